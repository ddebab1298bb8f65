// GPTQ's in-block column solve (Algorithm 1, inner loop) for the columns of one block that share
// one grid: per column the codes, the quantization error scaled by 1/d and the rank-1 update of the
// block's later columns. Validates once, then runs the CPU reference loop (gptq_columns_cpu.cpp) or
// one CUDA kernel launch (gptq_columns_cuda.cu). Both evaluate the per-column ATen formulation
// (quant::quantize_codes, dequantize_codes, div, a k=1 matmul, sub_) as scalar float32 operations in
// the same order and roundings, so they give the same codes, errors and weights bit for bit.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// For i in [c0, c1), every row n: Q1[n,i] = clamp(round(W1[n,i]/S[n]) + Z[n], 0, maxq),
/// Err1[n,i] = (W1[n,i] − S[n]·(Q1[n,i] − Z[n])) / Hinv1[i,i], then W1[n,j] −= Err1[n,i]·Hinv1[i,j]
/// for j in [i, count). W1, Err1 float32 [N, count] contiguous; Q1 float32 [N, count] and Hinv1
/// float32 [count, count] with unit column stride (views); scale, zero float32 [N]; all on one
/// device. Other columns are not touched. Throws lota::Error on any mismatch.
void gptq_columns(at::Tensor& W1, const at::Tensor& Q1, at::Tensor& Err1, const at::Tensor& Hinv1,
                  const at::Tensor& scale, const at::Tensor& zero, int maxq, int64_t c0, int64_t c1);

/// CPU reference (plain loops, the spec); arguments already validated, scale and zero contiguous.
void gptq_columns_cpu(at::Tensor& W1, const at::Tensor& Q1, at::Tensor& Err1, const at::Tensor& Hinv1,
                      const at::Tensor& scale, const at::Tensor& zero, int maxq, int64_t c0, int64_t c1);

}  // namespace lota::kernels
