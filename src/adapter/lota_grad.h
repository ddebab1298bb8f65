// Autograd glue for LoTA-QAF training (DESIGN §1, "the key performance fact"). The ternary
// adapters a_t, b_t are int8 and are not autograd leaves; their gradients accumulate into float32
// buffers held by LotaTrainState. Deliberately not here: the quantized GEMM (model/quant_linear)
// and the optimizer (train/tsignsgd.h).
//
// Note [LoTA training plan]
// Within one optimizer step a_t and b_t are constant, so per layer and per step:
//   1. (M, F) of the adapter; the merged layer Q' = Q + M with offset F is exactly what lota_merge
//      writes (quant/lota_merge.h). Training gets it from lota_remerge (quant/lota_remerge.h), which
//      keeps Q' and M instead of a second copy of Q and runs without host syncs.
//   2. Every forward and ∂x of that step runs the ordinary quantized-linear op on the merged weight:
//         y = quantized_linear(x)               (differentiable in x: ∂x = ∂y·W'ᵀ in HF layout)
//         y = lota_grad_tap(y, x, state)        (identity forward; its backward adds to the grads)
//      For dense references and tests, lota_linear(x, w_hat, bias, state) does both in one op.
//   3. In backward the tap forms Gw = xᵀ·∂y [K, N] (one GEMM, as in full fine-tuning) and
//      lota_backward reduces it to ∂a_t, ∂b_t (two K·N·r GEMMs), summed over micro-batches.
//   4. The optimizer step (t-SignSGD) updates a_t, b_t in place and the trainer zeroes the grad
//      buffers; go to 1. M, P and W' are never materialised per forward.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "quant/lota.h"

namespace lota::adapter {

/// One LoTA layer's adapter during training. Tensors are handles shared with the owning layer
/// (in-place updates by the optimizer are seen here). Copying the struct copies handles only.
struct LotaTrainState {
    at::Tensor a_t;     ///< lora_A.weight int8 [r, K]
    at::Tensor b_t;     ///< lora_B.weight int8 [N, r]
    at::Tensor grad_a;  ///< float32 [r, K], accumulates ∂L/∂a_t
    at::Tensor grad_b;  ///< float32 [N, r], accumulates ∂L/∂b_t
    at::Tensor scales;  ///< S [G, N] of the base layer
    at::Tensor g_idx;   ///< [K] of the base layer
    int64_t n_groups = 1;  ///< G
    quant::LotaGroups groups;  ///< the rows of each group, validated once (quant::lota_groups_make)
    double omega = 1.0;    ///< ω
    /// Float32 scalar with requires_grad: an input of the autograd ops so that autograd calls their
    /// backward even when x needs no gradient (e.g. the first layer over frozen embeddings).
    at::Tensor anchor;
};

/// Builds a state with zeroed float32 grad buffers on a_t's device and a fresh anchor; validates
/// shapes and g_idx (lota_groups_make: reads back on CUDA, so call it at load time, not per step).
LotaTrainState lota_train_state_init(at::Tensor a_t, at::Tensor b_t, at::Tensor scales, at::Tensor g_idx,
                                     int64_t n_groups, double omega);

/// Zeroes state.grad_a and state.grad_b (after each optimizer step).
void lota_train_state_zero_grad(LotaTrainState& state);

/// Gw = xᵀ·∂y for x [..., K], dy [..., N] (GEMM in x's dtype, result float32), then adds
/// lota_backward(Gw) into state.grad_a / grad_b. No host syncs.
void lota_accumulate_grads(const LotaTrainState& state, const at::Tensor& x, const at::Tensor& dy);

/// Identity on y [..., N]; in backward passes ∂y through unchanged and calls
/// lota_accumulate_grads(state, x, ∂y). x [..., K] is the input y was computed from.
at::Tensor lota_grad_tap(const at::Tensor& y, const at::Tensor& x, const LotaTrainState& state);

/// y = x·w_hatᵀ (+ bias) with the dense merged weight w_hat [N, K] (HF layout, x's dtype), e.g.
/// quant::lota_dequant_reference(...).t(). Backward: ∂x = ∂y·w_hat, adapter grads accumulated as in
/// lota_grad_tap; w_hat and bias get no gradient.
at::Tensor lota_linear(const at::Tensor& x, const at::Tensor& w_hat, const at::Tensor& bias,
                       const LotaTrainState& state);

}  // namespace lota::adapter
