// Finding where a non-finite training loss came from, so the error names a tensor rather than
// only "loss is nan".
#pragma once

#include <string>
#include <vector>

#include "adapter/attach.h"
#include "data/examples.h"
#include "model/transformer.h"

namespace lota::train {

/// Names the first non-finite tensor behind a non-finite loss: the adapter tensors of each adapted
/// layer in model order (e.g. "model.layers.3.mlp.down_proj lora_B"), else the first non-finite
/// activation of `batch` run forward again (model::nonfinite_find_forward). "" when all are finite.
std::string nonfinite_find(model::Transformer& model, const std::vector<adapter::AdaptedLayer>& layers,
                           const data::Batch& batch);

}  // namespace lota::train
