// The training loss through the LM head without full-vocabulary logits: token
// cross-entropy summed over rows, computed chunk by chunk of rows. A chunk's logits are formed in
// the compute dtype, as the model's LM head forms them, and its log-softmax in float32; the backward
// recomputes them, so memory is O(chunk × V) instead of several [tokens, V] float32 tensors (at
// Llama-3 scale, 5120 tokens × 128256 × 4 bytes = 2.6 GB each). Not here: the label shift and the
// normalisation by the number of target tokens (train/trainer.cpp).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lota::train {

/// Σ_i CE(h_i·Wᵀ, target_i) over the rows whose target is not −100, as a float32 scalar on h's device
/// (equal, up to float32 rounding, to at::cross_entropy_loss(at::linear(h, W).to(float32), targets,
/// Sum, ignore_index −100)). h [M, C] (final-normed hidden states, compute dtype), weight [V, C] (same
/// dtype, frozen: throws if it requires grad), targets int64 [M]; chunk_rows ≥ 1 rows per chunk.
/// Differentiable in h. No host syncs.
at::Tensor lm_loss_sum(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& targets,
                       int64_t chunk_rows = 1024);

}  // namespace lota::train
