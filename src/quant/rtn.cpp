// Round-to-nearest quantization (see rtn.h) and the option checks shared with GPTQ.
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

QuantizedWeight rtn_quantize(const at::Tensor& W_in, const QuantOptions& opts) {
    LOTA_CHECK(W_in.dim() == 2, "rtn_quantize: expected W [N, K], got %s", shape_str(W_in.sizes().vec()).c_str());
    const int64_t K = W_in.size(1);
    quant_options_check(opts, K, "rtn_quantize");
    const at::NoGradGuard no_grad;
    const at::Tensor W = W_in.to(at::kFloat);
    const int64_t g = opts.group_size == -1 ? K : opts.group_size;
    const int maxq = (1 << opts.bits) - 1;
    std::vector<at::Tensor> Q, scales, zeros;
    for (int64_t j = 0; j < K / g; ++j) {
        const at::Tensor Wg = W.slice(1, j * g, (j + 1) * g);
        const GridParams p = grid_params(Wg, opts.bits, opts.sym);
        Q.push_back(quantize_codes(Wg, p.scale, p.zero, maxq));
        scales.push_back(p.scale);
        zeros.push_back(p.zero);
    }
    const at::Tensor g_idx = at::arange(K, at::kLong).div(g, "floor");
    return quantized_weight_make(at::cat(Q, 1), at::stack(scales), at::stack(zeros), g_idx, opts.bits,
                                 opts.group_size);
}

}  // namespace lota::quant
