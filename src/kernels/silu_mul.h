// The SwiGLU product of a Llama MLP, silu(gate)·up, as ATen computes it (the CPU path is those two ops):
// silu(g) = g / (1 + exp(−g)) in float32 rounded to the dtype, then the product in float32 rounded again.
// On CUDA without autograd, one kernel (kernels/silu_mul_cuda.cu) instead of two, reading gate and up
// where they are (the two halves of the fused gate/up product's output) and writing the product once.
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// gate and up of one shape and dtype (f32, f16 or bf16; any strides); returns silu(gate)·up, contiguous.
/// Throws lota::Error on a shape or dtype mismatch.
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);

}  // namespace lota::kernels
