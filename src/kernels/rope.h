// Rotary position embedding applied to queries or keys, as HF's apply_rotary_pos_emb computes it
// (the CPU path is that formula, op for op):  y = x·cos + rotate_half(x)·sin,
// rotate_half(x) = cat(−x[..., D/2:], x[..., :D/2]), each product and the sum rounded to x's dtype.
// On CUDA without autograd, one kernel (kernels/rope_cuda.cu) instead of six, with the same roundings.
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// x [B, H, T, D] (any strides; f32, f16 or bf16), cos and sin [B or 1, T, D] of x's dtype. Returns y
/// [B, H, T, D]. Throws lota::Error on a shape or dtype mismatch.
at::Tensor rope_rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lota::kernels
