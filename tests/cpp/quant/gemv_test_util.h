// Shared by the quant_gemv tests (CPU twin in tests/cpp/quant, CUDA kernel in tests/cpp/kernels):
// a random quantized layer, the float64 reference product with its rounding bound, and the call.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

#include "kernels/quant_gemv.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"

namespace lota_test {

/// RTN layer of W [N, K] ~ 0.05·randn; act-order permutes g_idx; optional LoTA offset and bias.
inline lota::quant::QuantizedWeight gemv_random_layer(int64_t K, int64_t N, int bits, int group, bool act_order,
                                                      bool offset, bool bias) {
    lota::quant::QuantOptions o;
    o.bits = bits;
    o.group_size = group;
    lota::quant::QuantizedWeight qw = lota::quant::rtn_quantize(at::randn({N, K}) * 0.05, o);
    if (act_order) qw.g_idx = qw.g_idx.index_select(0, at::randperm(K, at::kLong)).contiguous();
    if (offset) qw.offset = at::rand({qw.n_groups(), N}) - 0.5;
    if (bias) qw.bias = at::randn({N});
    return qw;
}

/// y64 = x·W + b in float64 from the spec's dequantized W; bound = |x|·|W| (the scale of the
/// rounding errors any float32 accumulation order can make).
inline std::pair<at::Tensor, at::Tensor> gemv_reference(const lota::quant::QuantizedWeight& qw, const at::Tensor& x) {
    const at::Tensor W = lota::quant::dequantize(qw, at::kFloat).to(at::kDouble);  // [K, N]
    const at::Tensor xd = x.to(at::kDouble);
    at::Tensor y = xd.matmul(W);
    if (qw.bias.defined()) y = y + qw.bias.to(x.scalar_type()).to(at::kDouble);
    return {y, xd.abs().matmul(W.abs())};
}

/// kernels::quant_gemv on x with the layer's tensors (bias cast to x's dtype, as QuantLinear does).
inline at::Tensor gemv_run(const lota::quant::QuantizedWeight& qw, const at::Tensor& x, int64_t group_rows,
                           const lota::kernels::GemvTuning& tuning = {}) {
    const at::Tensor bias = qw.bias.defined() ? qw.bias.to(x.scalar_type()) : at::Tensor();
    return lota::kernels::quant_gemv(x, qw.qweight, qw.zeros, qw.scales, qw.g_idx, qw.offset, bias, qw.bits,
                                     group_rows, tuning);
}

/// Unit roundoff of the output dtype (the one rounding of each output element).
inline double gemv_out_eps(at::ScalarType t) {
    return t == at::kBFloat16 ? 1.0 / 256 : t == at::kHalf ? 1.0 / 1024 : 0.0;
}

}  // namespace lota_test
