// Launcher of the CUDA GPTQ column-solve kernel (gptq_columns_cuda.cu). Raw pointers only: this
// header is included by g++ (gptq_columns.cpp) and nvcc alike, with no torch and no CUDA headers.
// Validation is the caller's job (kernels/gptq_columns.h does it once).
#pragma once

#include <cstdint>

namespace lota::kernels {

/// Bytes of dynamic shared memory the kernel needs for columns [c0, count) of a block.
int64_t gptq_columns_cuda_smem_bytes(int64_t c0, int64_t count);

/// Columns [c0, c1) of gptq_columns (gptq_columns.h) on the current device: W1 and Err1 row-major
/// [N, count]; Q1 rows `ldq` apart and Hinv1 rows `ldh` apart, columns contiguous; scale, zero [N].
/// `stream` is a cudaStream_t. Returns the cudaError_t of the launch (0 = ok).
int gptq_columns_cuda_launch(float* W1, float* Q1, float* Err1, const float* Hinv1, const float* scale,
                             const float* zero, int64_t N, int64_t count, int64_t ldq, int64_t ldh, int maxq,
                             int64_t c0, int64_t c1, void* stream);

/// cudaGetErrorString for a code returned by gptq_columns_cuda_launch.
const char* gptq_columns_cuda_error_string(int err);

}  // namespace lota::kernels
