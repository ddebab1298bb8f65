// KL divergence from a reference model, shared by the perplexity and held-out-loss evaluations:
// the reference runs on the same token ids, and KL(p_ref ‖ p_model) is taken per position.
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::model {
class Transformer;
}

namespace lota::eval {

/// Throws (naming `what`) unless the reference has the model's vocabulary size.
void kl_reference_check(const model::Transformer& reference, const model::Transformer& model, const char* what);

/// KL(p_ref ‖ p) per position for log-probabilities [..., V] (float32): Σ_v p_ref·(log p_ref − log p).
at::Tensor kl_per_position(const at::Tensor& ref_logp, const at::Tensor& logp);

/// log-softmax of the reference's logits for ids [B, T] (mask may be undefined), float32 on `device`.
at::Tensor reference_logp(model::Transformer& reference, const at::Tensor& ids, const at::Tensor& mask,
                          const at::Device& device);

/// log-softmax of `model`'s logits at the flat positions `rows` (int64 [R] into [B·T]) only: [R, V],
/// float32 on `device`. The LM head runs on those R rows alone.
at::Tensor scored_logp(model::Transformer& model, const at::Tensor& ids, const at::Tensor& mask,
                       const at::Tensor& rows, const at::Device& device);

}  // namespace lota::eval
