// Exact LoTA-QAF merge into a GPTQ layer (DESIGN §1 "Merge", §3 "Merged LoTA model"): codes become
// Q' = Q + M with the same bit width and packing, and the per-group offset factor F is attached as
// QuantizedWeight::offset, so S·(Q' − Z + F) is the training-time W' bit for bit. The one-off merge of
// Note [merge entry points] (quant/lota.h). Writing the checkpoint (and recording the offset in
// quantize_config.json) is io's job, not this file's.
#pragma once

#include <ATen/core/Tensor.h>

#include "quant/quantized_weight.h"

namespace lota::quant {

/// Merges the ternary adapter (a_t = lora_A.weight int8 [r, K], b_t = lora_B.weight int8 [N, r])
/// with threshold omega into qw: returns a copy with qweight = pack(Q + M) and offset = F
/// (lota_merge_reference). Scales, zeros, g_idx and bias are shared with qw. Throws lota::Error when
/// shapes disagree or qw already carries an offset (merging twice is not exact).
QuantizedWeight lota_merge(const QuantizedWeight& qw, const at::Tensor& a_t, const at::Tensor& b_t, double omega);

}  // namespace lota::quant
