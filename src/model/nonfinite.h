// Finding where a non-finite loss or logit came from, so an error names a tensor rather than only
// "loss is nan".
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

#include "model/transformer.h"

namespace lota::model {

/// Reruns `ids` ([B, T], with `mask` or undefined) forward without gradients, block by block, and
/// names the first non-finite result: "output of the token embedding (model.embed_tokens)",
/// "output of block 5 (model.layers.5)", "output of the final norm (model.norm)" or "logits
/// (lm_head)". Returns "" when all are finite.
std::string nonfinite_find_forward(Transformer& model, const at::Tensor& ids, const at::Tensor& mask);

}  // namespace lota::model
