// Builds the Linear of one projection from a checkpoint's tensors: a QuantLinear from what
// io::gptq_linear_read returns when the checkpoint is GPTQ-quantized, else a DenseLinear.
#pragma once

#include <optional>
#include <string>

#include <ATen/core/Tensor.h>

#include "io/finite_check.h"
#include "io/gptq_checkpoint.h"
#include "io/model_files.h"
#include "model/linear.h"

namespace lota::model {

/// Where a projection lives and what the architecture expects of it.
struct LinearSpec {
    std::string prefix;       ///< module path, "model.layers.3.mlp.up_proj"
    int64_t in = 0, out = 0;  ///< shape the architecture expects
    bool bias = false;        ///< the architecture has a bias here
    std::string shape_from;   ///< where in/out come from, for messages ("config.json")
};

/// The projection `spec.prefix`: with a `gptq` config and `prefix`.qweight stored, a QuantLinear
/// (codes, scales and zeros on `device`, bias of `dtype`); else a DenseLinear from `prefix`.weight
/// (a module a GPTQ checkpoint left unquantized). Shapes are checked against spec; throws
/// lota::Error naming the file, the tensor, its shape and the expected shape.
/// Dense weights and biases, as converted to `dtype` on `device`, are queued on `finite` when given
/// (GPTQ scales and offsets are checked on reading, io::gptq_linear_read).
LinearPtr linear_load(const io::ModelFiles& files, const std::optional<io::GptqConfig>& gptq, const LinearSpec& spec,
                      const at::Device& device, at::ScalarType dtype, io::FiniteCheck* finite = nullptr);

}  // namespace lota::model
