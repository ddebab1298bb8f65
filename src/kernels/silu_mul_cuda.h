// Launcher of the SwiGLU kernel (silu_mul_cuda.cu); raw pointers, no torch (see silu_mul.h).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType: float32, float16, bfloat16

namespace lota::kernels {

/// out[r, i] = round(round(silu(gate[r, i])) · up[r, i]) for r < rows, i < n, with gate and up rows
/// `ld` elements apart and out contiguous [rows, n], all of type t. Returns the cudaError_t of the launch.
int silu_mul_cuda_launch(const void* gate, const void* up, int64_t ld, void* out, int64_t rows, int64_t n,
                         GemvType t, void* stream);

}  // namespace lota::kernels
