// Builds the right Linear variant for one projection of a checkpoint: dense weights, or a
// quantized linear when config.json carries a GPTQ "quantization_config".
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

#include "io/hf_config.h"
#include "io/model_files.h"
#include "model/linear.h"

namespace lota::model {

/// `prefix` is the module path ("model.layers.3.mlp.up_proj"); shapes are checked against
/// in/out (from `config_path`). Throws lota::Error naming the file and tensor.
LinearPtr linear_load(const io::ModelFiles& files, const io::ModelConfig& cfg, const std::string& config_path,
                      const std::string& prefix, int64_t in, int64_t out, bool bias, const at::Device& device,
                      at::ScalarType dtype);

}  // namespace lota::model
