// GPTQ dequantization op: W[k,n] = S[g,n]·(Q[k,n] − Z[g,n] + F[g,n]), g = g_idx[k] (DESIGN §1),
// from packed codes into a [K, N] buffer of the compute dtype. Validates once, then runs the CPU
// kernel (dequant_cpu.cpp) or the CUDA kernel (dequant_cuda.cu); both evaluate
// kernels::dequant_value in float32 and round once, so they agree bit for bit.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

namespace lota::kernels {

/// qweight int32 [K*bits/32, N], zeros int32 [G, N], scales fp16 [G, N], g_idx int32 [K] (values
/// in [0, G)), offset float32 [G, N] or undefined; all on one device, contiguous. Returns W
/// [K, N] of `dtype` (f32, f16 or bf16); when `out` is defined it must be exactly that shape,
/// dtype and device (a reused buffer) and is written and returned. Throws lota::Error on any mismatch.
at::Tensor dequant_forward(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                           const at::Tensor& g_idx, const at::Tensor& offset, int bits, at::ScalarType dtype,
                           at::Tensor out = {});

/// The shape/dtype/device checks of dequant_forward (all but g_idx's value range); throws lota::Error.
void dequant_check_args(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                        const at::Tensor& g_idx, const at::Tensor& offset, int bits);

/// The CPU kernel (dequant_cpu.cpp); arguments already validated.
void dequant_cpu(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                 const at::Tensor& g_idx, const at::Tensor& offset, int bits, at::Tensor& out);

}  // namespace lota::kernels
