// LoTA-QAF ternary adaptation math on unpacked tensors (DESIGN §1; Chen et al. 2025, arXiv 2505.18724):
// adapter init, ΔW = P, markers M, offset factor F, the merged weight W' and the backward to the
// ternary adapters. Everything here works on plain [K, N] integer codes and is the specification
// the packed merges are checked against (Note [merge entry points]); packing, checkpoints and GEMM
// kernels live elsewhere (quant/pack.h, quant/lota_merge.h, quant/lota_remerge.h, kernels/). Pure
// math: no optimizer, no autograd, no training state.
//
// Note [merge entry points]
// The merge is written once as a specification and twice more as fast paths; tests prove them equal.
//   Specification, on unpacked [K, N] codes (this file):
//     lota_merge_reference(a_t, b_t, Q, g_idx, G, ω, maxq) -> M, F
//     lota_dequant_reference(Q, M, Z, S, F, g_idx)          -> W' float32 [K, N]
//   One-off merge of a packed layer (quant/lota_merge.h), what `lota merge` writes:
//     lota_merge(QuantizedWeight, a_t, b_t, ω) -> packed Q + M with offset F, via lota_merge_reference
//   Per-step re-merge from the previous merged codes (quant/lota_remerge.h), what training runs:
//     lota_remerge(codes, layer, groups, a_t, b_t, ω) -> the fused CUDA kernel where it applies, else
//     lota_remerge_ops(...)                            -> whole-tensor ops on any device (the kernel's twin)
// Tests (tests/cpp/lota/):
//   lota_merge_reference, lota_dequant_reference vs independent loops: test_lota_merge_reference.cpp
//   lota_merge == lota_merge_reference (codes Q + M, F) and dequantize(lota_merge) == lota_dequant_reference,
//     bit for bit: LotaMerge.MergedCodesAndWeightsAreExact (test_lota_merge.cpp)
//   lota_remerge == lota_merge over a sequence of adapters, every bit width, act-order:
//     LotaRemerge.SequenceOfAdaptersMatchesOneOffMerge (test_lota_remerge.cpp)
//   the fused kernel's per-weight step == lota_remerge_ops on the CPU: LotaRemerge.FusedKernelStepMatchesTensorOps;
//     lota_remerge on CUDA == lota_remerge_ops on the CPU == lota_merge: LotaCuda.RemergeMatchesCpuBitForBit
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

/// Row grouping of one layer, validated once and then reused by every step's offsets and backward
/// without further checks or host syncs (Note [grouped rows] in lota.cpp).
struct LotaGroups {
    int64_t n_groups = 1;  ///< G
    int64_t rows = 1;      ///< g = K/G rows per group
    at::Tensor perm;       ///< int64 [K]: stable argsort of g_idx; undefined when g_idx is sorted (identity)
};

/// Validates g_idx like lota_group_size (syncs on CUDA: call it at load time) and builds the grouping
/// on g_idx's device.
LotaGroups lota_groups_make(const at::Tensor& g_idx, int64_t n_groups);

/// Σ over the rows of each group of x [K, N], accumulated and returned in `dtype`: [G, N]. No checks.
at::Tensor lota_group_sum(const at::Tensor& x, const LotaGroups& groups, at::ScalarType dtype);

/// delta_w = P = (b_t·a_t)ᵀ, int32 [K, N]. Exact: see Note [exact ternary GEMM] in lota.cpp.
at::Tensor lota_delta_w(const at::Tensor& a_t, const at::Tensor& b_t);

/// The same P as a floating-point tensor holding exact integers (float16 on CUDA for r ≤ 2048,
/// else float32): half the bytes of lota_delta_w and no conversion pass, for the per-step re-merge.
at::Tensor lota_delta_w_float(const at::Tensor& a_t, const at::Tensor& b_t);

/// Markers M, int8 [K, N]: +1 where P > ω and Q < maxq, −1 where P < −ω and Q > 0, else 0.
/// delta_w: integer [K, N]; q: integer codes [K, N] in [0, maxq].
at::Tensor lota_markers(const at::Tensor& delta_w, const at::Tensor& q, double omega, int64_t maxq);

/// THE offset factor: F[j,n] = (1/(g·ω))·Σ_{k: g_idx[k]=j} (P[k,n] − ω·M[k,n]), float32 [G, N].
/// This is the only place F is computed (training, merge and inference all use its value); see
/// Note [offset rounding] in lota.cpp for the exact arithmetic. g = K/G (checked).
at::Tensor lota_offset(const at::Tensor& delta_w, const at::Tensor& markers, const at::Tensor& g_idx,
                       int64_t n_groups, double omega);
/// The arithmetic of lota_offset from exact group sums ΣP, ΣM [G, N] (any integer-valued dtype):
/// F = (ΣP − ω·ΣM) / (g·ω) in float64, rounded once to float32. lota_offset and the per-step
/// re-merge both end here, so F is defined in exactly one place.
at::Tensor lota_offset_from_sums(const at::Tensor& sum_p, const at::Tensor& sum_m, int64_t g, double omega);

/// What merging an adapter adds to a layer: M int8 [K, N] and F float32 [G, N].
struct LotaMergeTerms {
    at::Tensor markers;  ///< M
    at::Tensor offset;   ///< F
};

/// THE merge (Note [merge entry points]): P from the adapters, then M and F, validating every input.
/// a_t int8 [r, K], b_t int8 [N, r], q codes [K, N], g_idx [K]; omega > 0; maxq = 2^bits − 1.
LotaMergeTerms lota_merge_reference(const at::Tensor& a_t, const at::Tensor& b_t, const at::Tensor& q,
                                    const at::Tensor& g_idx, int64_t n_groups, double omega, int64_t maxq);

/// THE dequantized merged weight, float32 [K, N]:
///     w_hat[k,n] = S[j,n] · (float(Q[k,n] + M[k,n] − Z[j,n]) + F[j,n]),  j = g_idx[k],
/// in float32 (two roundings: the + F, then the · S). markers and offset may be undefined
/// (treated as 0). q, markers, zeros integer; scales any float type [G, N]; offset float32 [G, N].
/// quant::dequantize(QuantizedWeight) of the merged codes uses the same operation order.
at::Tensor lota_dequant_reference(const at::Tensor& q, const at::Tensor& markers, const at::Tensor& zeros,
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
/// Does not validate g_idx values (lota_groups_make does that once).
LotaGrads lota_backward(const at::Tensor& gw, const at::Tensor& scales, const at::Tensor& g_idx, int64_t n_groups,
                        double omega, const at::Tensor& a_t, const at::Tensor& b_t);
/// The same with a precomputed grouping (no sort of g_idx, no row gather when it is sorted). gw is
/// used as scratch (scaled in place) when it is not needed afterwards: pass gw_scratch = true then.
/// On CUDA gw may also be bfloat16 or float16 (Note [16-bit adapter gradients] in lota.cpp): Gs is
/// then rounded to that type once and the two GEMMs run on tensor cores with float32 results.
LotaGrads lota_backward(const at::Tensor& gw, const at::Tensor& scales, const LotaGroups& groups, double omega,
                        const at::Tensor& a_t, const at::Tensor& b_t, bool gw_scratch = false);

/// The same gradients from the layer's input x [T, K] and ∂L/∂y [T, N] (float32), without forming
/// Gw = xᵀ·∂y: 4·T·N·G·r + O(T·K·r) multiply-adds instead of 2·T·K·N, fewer when 2·r < g
/// (lota_backward_from_inputs_pays). Groups must be contiguous (groups.perm undefined). The sums run in
/// another order than lota_backward's, so results agree to float32 rounding, not bit for bit.
LotaGrads lota_backward_from_inputs(const at::Tensor& x, const at::Tensor& dy, const at::Tensor& scales,
                                    const LotaGroups& groups, double omega, const at::Tensor& a_t,
                                    const at::Tensor& b_t);
/// Whether lota_backward_from_inputs does less arithmetic than forming Gw (2·r·G < K, contiguous groups).
bool lota_backward_from_inputs_pays(const LotaGroups& groups, int64_t rank, int64_t in_features);

}  // namespace lota::quant
