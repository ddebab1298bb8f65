// Launcher of the CUDA GPTQ dequantization kernel (dequant_cuda.cu). Raw pointers only: this
// header is included by g++ (dequant.cpp) and nvcc alike, with no torch and no CUDA headers.
// Validation is the caller's job (kernels/dequant.h does it once).
#pragma once

#include <cstdint>

namespace lota::kernels {

enum class DequantOut { F32 = 0, F16 = 1, BF16 = 2 };

/// Writes W [K, N] (row-major, type `out_type`) = S·(Q − Z + F) on the device. qweight int32
/// [K*bits/32, N], zeros int32 [G, N], scales fp16 bits [G, N], g_idx int32 [K], offset float
/// [G, N] or nullptr. `stream` is a cudaStream_t. Returns the cudaError_t of the launch (0 = ok).
int dequant_cuda_launch(const int32_t* qweight, const int32_t* zeros, const uint16_t* scales, const int32_t* g_idx,
                        const float* offset, int64_t K, int64_t N, int bits, DequantOut out_type, void* out,
                        void* stream);

/// cudaGetErrorString for a code returned by dequant_cuda_launch.
const char* dequant_cuda_error_string(int err);

}  // namespace lota::kernels
