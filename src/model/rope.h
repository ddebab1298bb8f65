// Rotary position embeddings as HF transformers computes them (default and "llama3" scaling).
#pragma once

#include <ATen/core/Tensor.h>

#include "io/hf_config.h"

namespace lota::model {

/// inv_freq [head_dim/2] float32, with llama3 frequency scaling applied when configured.
at::Tensor rope_inv_freq(const io::ModelConfig& c);
/// cos, sin [B, T, head_dim] in `dtype` for integer positions [B, T] (computed in float32).
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions,
                                               at::ScalarType dtype);
/// x*cos + rotate_half(x)*sin for x [B, H, T, D] and cos/sin [B, T, D].
at::Tensor rope_apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lota::model
