// RMSNorm and the SwiGLU product for training, differentiable with autograd functions that save only
// their inputs. Composed of ATen ops, autograd would keep every intermediate for backward: RMSNorm's
// float32 copy of x, its variance, rsqrt and normalised x (about 2.5× x's bytes in a 16-bit model), and
// silu(gate) beside gate and up. With activations kept (--recompute-blocks < all), those dominate a
// block's memory; these functions keep x, or gate and up, and recompute the rest in backward.
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::model {

/// y = w · round_to_dtype(x_f32 · rsqrt(mean(x_f32²) + eps)) (kernels/rms_norm.h, one kernel on CUDA),
/// differentiable in x; w must be frozen (throws if it requires grad). The gradient is the formula's:
///   ∂x = r·g − r³·x·mean(g·x),  g = float32(∂y·w), r = rsqrt(mean(x²) + eps),  in float32.
at::Tensor rms_norm_lean(const at::Tensor& x, const at::Tensor& w, double eps);

/// silu(gate) · up, with the same values and gradients as at::silu(gate) * up (ATen's own silu and
/// silu_backward, in the same order); saves gate and up only.
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);

}  // namespace lota::model
