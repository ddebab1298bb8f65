// QA-LoRA (Xu et al., ICLR 2024, arXiv 2309.14717, "QA-LoRA: Quantization-Aware Low-Rank Adaptation of
// Large Language Models") on one GPTQ layer: the group pooling of the input, and the float offset per
// (group, output column) its adapter adds, written in LoTA-QAF's merged format (F in W = S·(Q − Z + F),
// quant/lota.h, io `lota_offset`). The one place this offset is computed: training (adapter/qalora_linear.h)
// and `lota merge` use the same function. Not here: autograd, the optimizer, adapter files.
//
// Note [QA-LoRA pooling and merge]
// Layer y = x·W (W is K×N, K = G·g, group j = input rows [j·g, (j+1)·g), contiguous). The adapter
// lora_A.weight A [r, G], lora_B.weight B [N, r], s = lora_alpha / r, sees the pooled input
//     pool(x)[j] = c · Σ_{k in group j} x[k],   c = 1/g (MEAN, the default) or 1 (SUM),
//     y = x·W + s · pool(x)·Aᵀ·Bᵀ.
// So the adapter's contribution to the weight is constant within a group:
//     ΔW[k,n] = D[j,n] = s·c·Σ_i A[i,j]·B[n,i],  j = k / g,
// and with the GPTQ dequantization W = S·(Q − Z) it is a shift of the zero point, in grid steps
//     W' = S·(Q − Z + F),  F[j,n] = D[j,n] / S[j,n].
// Sources, and why they agree:
//   - The official code (github.com/yuhuixu1993/qa-lora, peft_utils.py) pools with nn.AvgPool1d(group_size):
//     the MEAN (c = 1/g), then lora_B(lora_A(pool(x)))·scaling. Its merge.py does
//         qzeros -= (lora_B @ lora_A).t() * scale / group_size / scales,
//     i.e. Z' = Z − s·(BA)ᵀ/(g·S) = Z − F with c = 1/g: S·(Q − Z') = S·(Q − Z + F), our formula exactly.
//   - The paper's Algorithm 1 pools with the same AvgPool1d but multiplies by the group size,
//     QA(x)·(D_in//L) (the SUM, c = 1), and merges with β_new = β − s·(BA)ᵀ/α: no 1/g, consistent with the
//     sum. (Its pseudo-code uses α both as the multiplier W·α of pre_quantization and as the divisor of the
//     merge; the zero shift that keeps W' = W + ΔW is s·(BA)ᵀ/S in GPTQ's terms, which merge.py computes.)
//     SUM is MEAN with s multiplied by g; both are offered (--qalora-pooling), MEAN by default since the
//     published results come from the official code.
// We store F (float32, like LoTA-QAF's offset) instead of rewriting Z: GPTQ's zeros are integers, and a
// float zero Z − F stored in 16 bits would lose F (DESIGN §3).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "quant/quantized_weight.h"

namespace lota::quant {

/// How the group-pooled input is formed (Note [QA-LoRA pooling and merge]).
enum class QaLoraPooling {
    MEAN,  ///< "mean": average of each group (official code), c = 1/g
    SUM,   ///< "sum": sum of each group (the paper's Algorithm 1), c = 1
};

/// "mean" -> MEAN, "sum" -> SUM; throws naming `what` and the known names otherwise.
QaLoraPooling qalora_pooling_parse(const std::string& name, const std::string& what);
/// The name qalora_pooling_parse accepts.
const char* qalora_pooling_name(QaLoraPooling pooling);

/// c of the Note: 1/group_size for MEAN, 1 for SUM.
double qalora_pool_scale(QaLoraPooling pooling, int64_t group_size);

/// Checks that `qw` can carry a QA-LoRA adapter: group-wise (group_size > 0, not per-channel) with
/// contiguous groups (g_idx[k] = k / g: no act-order) and no offset yet (not a merged model). Reads
/// g_idx back once. Throws lota::Error starting with `what`.
void qalora_check_layer(const QuantizedWeight& qw, const std::string& what);

/// pool(x): x [..., K] -> [..., K/g], c·Σ over each group of g consecutive features, in x's dtype.
at::Tensor qalora_pool(const at::Tensor& x, int64_t group_size, QaLoraPooling pooling);

/// THE offset F [G, N] float32, on lora_a's device: F[j,n] = s·c·Σ_i A[i,j]·B[n,i] / S[j,n], computed in
/// float64 from A [r, G] and B [N, r] (any float type) and S [G, N] (fp16), rounded once to float32.
/// scaling = s = lora_alpha / r. Deterministic for a given device (the merge verifies on the same device).
at::Tensor qalora_offset(const at::Tensor& lora_a, const at::Tensor& lora_b, const at::Tensor& scales, double scaling,
                         QaLoraPooling pooling, int64_t group_size);

/// The exact merge: a copy of `qw` (checked with qalora_check_layer) with offset = qalora_offset, F
/// computed on lora_a's device and stored on qw's. Codes, zeros, scales, g_idx and bias are shared.
QuantizedWeight qalora_merge(const QuantizedWeight& qw, const at::Tensor& lora_a, const at::Tensor& lora_b,
                             double scaling, QaLoraPooling pooling);

}  // namespace lota::quant
