// RMSNorm as HF's LlamaRMSNorm computes it (the CPU path is that formula, op for op):
//   y = w · round_to_dtype(x_f32 · rsqrt(mean(x_f32²) + eps))
// On CUDA without autograd, one kernel per call (kernels/rms_norm_cuda.cu) instead of the seven
// elementwise and reduction kernels of the formula: at batch 1 each decode step runs 65 of them on
// an 8B model, and their launches, not their bytes, were the cost (bench/decode.md).
#pragma once

#include <utility>

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// x [..., H] (f32, f16 or bf16), w [H] of x's dtype; returns y of x's shape and dtype. Throws
/// lota::Error on a shape or dtype mismatch.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

/// The residual stream's add and the norm that follows it, {s, rms_norm(s, w, eps)} with s = x + residual
/// (as ATen adds: in float32, rounded to x's dtype). Bit for bit what the two calls give; on CUDA without
/// autograd one kernel that reads x and residual once. x and residual of one shape and dtype.
std::pair<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& w,
                                               double eps);

/// The gradient in x of rms_norm for the output gradient `grad` (w frozen), as autograd of the formula
/// computes it in real arithmetic: with u = float32(grad·w) (the product rounded to x's dtype),
/// r = rsqrt(mean(x²) + eps):  dx = (u − x·r²·mean(u·x))·r, in float32, rounded to x's dtype. The CPU
/// path is that formula in ATen ops; CUDA one kernel. Throws lota::Error on a shape or dtype mismatch.
at::Tensor rms_norm_backward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& grad, double eps);

}  // namespace lota::kernels
