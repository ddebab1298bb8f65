// Builds QuantLinear layers from a GPTQ checkpoint directory's tensors: the hook that
// model/linear_loader.cpp calls when config.json carries a GPTQ "quantization_config".
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "io/model_files.h"
#include "model/linear.h"

namespace lota::model {

/// The linear `prefix` ("model.layers.3.mlp.up_proj") of a GPTQ checkpoint: `prefix`.qweight/
/// .qzeros/.scales/.g_idx(/.bias/.lota_offset) checked against in/out and `quantization_config`
/// (from `config_path`), v1 zero points converted exactly, moved to `device`, bias cast to
/// `dtype`. A linear stored dense (`prefix`.weight, e.g. a module left unquantized) becomes a
/// DenseLinear. Throws lota::Error naming the file, tensor, shapes and expected shapes.
LinearPtr quant_linear_load(const io::ModelFiles& files, const nlohmann::json& quantization_config,
                            const std::string& config_path, const std::string& prefix, int64_t in, int64_t out,
                            bool bias, const at::Device& device, at::ScalarType dtype);

}  // namespace lota::model
