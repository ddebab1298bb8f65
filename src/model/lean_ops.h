// RMSNorm, the rotary embedding and the SwiGLU product for training, differentiable with autograd
// functions that save only their inputs and run the fused kernels both ways on CUDA. Composed of ATen
// ops, autograd would keep every intermediate for backward (RMSNorm's float32 copy of x, its variance,
// rsqrt and normalised x: about 2.5× x's bytes in a 16-bit model; silu(gate) beside gate and up) and
// run a dozen elementwise kernels each way; in a profiled 8B training step the norms' and the rotary
// embedding's backward ops took 13% of the device time.
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::model {

/// y = w · round_to_dtype(x_f32 · rsqrt(mean(x_f32²) + eps)) (kernels/rms_norm.h), differentiable in x
/// (kernels::rms_norm_backward); w must be frozen (throws if it requires grad). Saves x.
at::Tensor rms_norm_lean(const at::Tensor& x, const at::Tensor& w, double eps);

/// kernels::rope_rotate(x, cos, sin), differentiable in x: the gradient is the inverse rotation,
/// rope_rotate(∂y, cos, −sin), which equals autograd of the formula when each of cos and sin has equal
/// halves in its last dimension (as model/rope.h's tables have). cos and sin must be constants; saved
/// instead of x.
at::Tensor rope_lean(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

/// silu(gate) · up, with the same values and gradients as at::silu(gate) * up (ATen's own silu and
/// silu_backward, in the same order); saves gate and up only.
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);

}  // namespace lota::model
