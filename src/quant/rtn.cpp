// Round-to-nearest quantization (see rtn.h) and the option checks shared with GPTQ. All groups of a
// weight are quantized at once (a [N·G, g] view), so a 70B-sized layer costs a few passes over it.
#include "quant/rtn.h"

#include <ATen/ATen.h>

#include "quant/quantizer.h"
#include "util/check.h"

namespace lota::quant {

void quant_options_check(const QuantOptions& opts, int64_t in_features, const char* what) {
    check_bits(opts.bits, what);
    LOTA_CHECK(opts.group_size == -1 || (opts.group_size > 0 && in_features % opts.group_size == 0),
               "%s: group size %d does not divide in_features %lld (expected -1 or a divisor, e.g. 32, 64, 128)",
               what, opts.group_size, (long long)in_features);
    LOTA_CHECK(in_features * opts.bits % 32 == 0,
               "%s: in_features %lld times %d bits is not a multiple of 32, so the codes cannot be packed", what,
               (long long)in_features, opts.bits);
    LOTA_CHECK(opts.damp >= 0.0, "%s: damp must be >= 0, got %g", what, opts.damp);
    LOTA_CHECK(opts.block_size > 0, "%s: block_size must be positive, got %lld", what, (long long)opts.block_size);
}

void quant_shape_check(const QuantOptions& opts, int64_t in_features, int64_t out_features, const char* what) {
    quant_options_check(opts, in_features, what);
    LOTA_CHECK(out_features * opts.bits % 32 == 0,
               "%s: out_features %lld times %d bits is not a multiple of 32, so zero points cannot be packed", what,
               (long long)out_features, opts.bits);
}

QuantizedWeight rtn_quantize(const at::Tensor& W_in, const QuantOptions& opts) {
    LOTA_CHECK(W_in.dim() == 2, "rtn_quantize: expected W [N, K], got %s", shape_str(W_in.sizes().vec()).c_str());
    const at::NoGradGuard no_grad;
    at::Tensor W = W_in.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true).contiguous();
    return rtn_quantize_(W, opts);
}

QuantizedWeight rtn_quantize_(at::Tensor& W, const QuantOptions& opts) {
    LOTA_CHECK(W.dim() == 2 && W.scalar_type() == at::kFloat && W.is_contiguous(),
               "rtn_quantize_: expected a contiguous float32 W [N, K], got %s %s", c10::toString(W.scalar_type()),
               shape_str(W.sizes().vec()).c_str());
    const int64_t K = W.size(1);
    quant_options_check(opts, K, "rtn_quantize");
    const at::NoGradGuard no_grad;
    const int64_t N = W.size(0), g = opts.group_size == -1 ? K : opts.group_size, G = K / g;
    const int maxq = (1 << opts.bits) - 1;
    // Row n·G + j of x is group j of output row n: one grid per row, every group in one pass.
    at::Tensor x = W.view({N * G, g});
    const GridParams p = grid_params(x, opts.bits, opts.sym);
    const at::Tensor Q = quantize_codes_(x, p.scale, p.zero, maxq).view({N, K});
    const at::Tensor g_idx = at::arange(K, at::kLong).div(g, "floor");
    return quantized_weight_make(Q, p.scale.view({N, G}).t(), p.zero.view({N, G}).t(), g_idx, opts.bits,
                                 opts.group_size);
}

}  // namespace lota::quant
