// Round-to-nearest quantization of one linear layer: the cheap baseline of DESIGN §2. Each
// group's grid comes from min/max of the original weights (quantizer.h); no calibration data.
#pragma once

#include <ATen/core/Tensor.h>

#include "quant/quantized_weight.h"

namespace lota::quant {

/// Options shared by RTN and GPTQ; RTN uses bits, group_size and sym only.
struct QuantOptions {
    int bits = 4;          ///< 2, 3, 4 or 8
    int group_size = 128;  ///< 32, 64, 128, ... dividing K, or -1 for one group per output channel
    bool sym = false;      ///< symmetric grid (Z = 2^(b−1)) instead of asymmetric min/max
    bool act_order = false;  ///< GPTQ: process columns by decreasing diag(H) (desc_act, g_idx permuted)
    double damp = 0.01;    ///< GPTQ: dampening, fraction of mean(diag H) added to the diagonal
    int64_t block_size = 128;  ///< GPTQ: columns per lazy-batch block
};

/// Checks bits, group size against K and the GPTQ knobs; `what` names the layer.
void quant_options_check(const QuantOptions& opts, int64_t in_features, const char* what);

/// quant_options_check for a linear of `in_features` → `out_features`, and that the zero points of
/// `out_features` columns pack into whole int32 words (out·bits a multiple of 32).
void quant_shape_check(const QuantOptions& opts, int64_t in_features, int64_t out_features, const char* what);

/// RTN-quantizes W [N, K] (any float dtype/device). Result tensors are on the CPU.
QuantizedWeight rtn_quantize(const at::Tensor& W, const QuantOptions& opts);
/// rtn_quantize of a contiguous float32 W that it overwrites with its codes: no buffer of W's size
/// (the same codes as rtn_quantize). For callers that drop W afterwards (lota init).
QuantizedWeight rtn_quantize_(at::Tensor& W, const QuantOptions& opts);

}  // namespace lota::quant
