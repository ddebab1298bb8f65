// LoTA-QAF ternary adaptation math on unpacked tensors (DESIGN §1; Chen et al. 2025, arXiv 2505.18724):
// adapter init, ΔW = P, markers M, offset factor F, the merged weight W' and the backward to the
// ternary adapters. Everything here works on plain [K, N] integer codes; packing, checkpoints and
// GEMM kernels live elsewhere (quant/pack.h, quant/lota_merge.h, model/). The optimizer is
// train/tsignsgd.h. Autograd glue for training is quant/lota_grad.h.
//
// Shapes (DESIGN §1): K in features, N out features, r rank, G groups of g = K/G rows each,
// group of row k is g_idx[k] (act-order makes it non-monotonic, so groups need not be contiguous).
// Adapters use peft's layout: a_t = lora_A.weight int8 [r, K], b_t = lora_B.weight int8 [N, r],
// and delta_w = P = (b_t·a_t)ᵀ is int32 [K, N], P[k,n] = Σ_i a_t[i,k]·b_t[n,i], |P| ≤ r.
#pragma once

#include <cstdint>
#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace lota::quant {

/// lora_A.weight at step 0: kaiming-normal (fan_in = K, gain √2) ternarised with
/// δ = 0.75·mean|A| (+1 above δ, −1 below −δ, else 0). Returns int8 [r, K] on the CPU.
at::Tensor lota_init_a(int64_t r, int64_t in_features, std::optional<at::Generator> generator = std::nullopt);
/// lora_B.weight at step 0: zeros, int8 [N, r] (so M = 0, F = 0 and W' = W).
at::Tensor lota_init_b(int64_t out_features, int64_t r);

/// Checks that g_idx is an integer [K] tensor with values in [0, G) and that every group holds
/// exactly K/G rows (true for GPTQ with and without act-order); returns g = K/G. Syncs on CUDA.
int64_t lota_group_size(const at::Tensor& g_idx, int64_t n_groups);

/// delta_w = P = (b_t·a_t)ᵀ, int32 [K, N]. Exact: see Note [exact ternary GEMM] in lota.cpp.
at::Tensor lota_delta_w(const at::Tensor& a_t, const at::Tensor& b_t);

/// Markers M, int8 [K, N]: +1 where P > ω and Q < maxq, −1 where P < −ω and Q > 0, else 0.
/// delta_w: integer [K, N]; q: integer codes [K, N] in [0, maxq].
at::Tensor lota_markers(const at::Tensor& delta_w, const at::Tensor& q, double omega, int64_t maxq);

/// THE offset factor: F[j,n] = (1/(g·ω))·Σ_{k: g_idx[k]=j} (P[k,n] − ω·M[k,n]), float32 [G, N].
/// This is the only place F is computed (training, merge and inference all use its value); see
/// Note [offset rounding] in lota.cpp for the exact arithmetic. g = K/G (checked).
at::Tensor lota_offset(const at::Tensor& delta_w, const at::Tensor& markers, const at::Tensor& g_idx,
                       int64_t n_groups, double omega);

/// Result of the per-step pre-merge: M int8 [K, N] and F float32 [G, N].
struct LotaPremerged {
    at::Tensor markers;  ///< M
    at::Tensor offset;   ///< F
};

/// Pre-merge (once per optimizer step; it *is* the merge): P from the adapters, then M and F.
/// a_t int8 [r, K], b_t int8 [N, r], q codes [K, N], g_idx [K]; omega > 0; maxq = 2^bits − 1.
LotaPremerged lota_premerge(const at::Tensor& a_t, const at::Tensor& b_t, const at::Tensor& q,
                            const at::Tensor& g_idx, int64_t n_groups, double omega, int64_t maxq);

/// THE dequantized merged weight, float32 [K, N]:
///     w_hat[k,n] = S[j,n] · (float(Q[k,n] + M[k,n] − Z[j,n]) + F[j,n]),  j = g_idx[k],
/// in float32 (two roundings: the + F, then the · S). markers and offset may be undefined
/// (treated as 0). q, markers, zeros integer; scales any float type [G, N]; offset float32 [G, N].
/// quant::dequantize(QuantizedWeight) of the merged codes uses the same operation order.
at::Tensor lota_dequant(const at::Tensor& q, const at::Tensor& markers, const at::Tensor& zeros,
                        const at::Tensor& scales, const at::Tensor& offset, const at::Tensor& g_idx);

/// Gradients of the ternary adapters, float32, peft layout.
struct LotaGrads {
    at::Tensor a_t;  ///< ∂L/∂lora_A.weight [r, K]
    at::Tensor b_t;  ///< ∂L/∂lora_B.weight [N, r]
};

/// Backward of DESIGN §1 (STE through M, M constant inside F). With Gs = S ⊙ Gw:
///     ∂L/∂P = Gs + (1/(g·ω))·groupsum(Gs)[g_idx],  ∂L/∂a_t = (∂L/∂P · b_t)ᵀ,  ∂L/∂b_t = ∂L/∂Pᵀ · a_tᵀ.
/// gw = ∂L/∂W' float32 [K, N]; scales [G, N]; g_idx [K]; a_t int8 [r, K]; b_t int8 [N, r].
/// Two K·N·r GEMMs plus O(K·N) elementwise work; ∂L/∂P is never materialised (lota.cpp).
/// Does not validate g_idx values (call lota_group_size once per step for that).
LotaGrads lota_backward(const at::Tensor& gw, const at::Tensor& scales, const at::Tensor& g_idx, int64_t n_groups,
                        double omega, const at::Tensor& a_t, const at::Tensor& b_t);

}  // namespace lota::quant
