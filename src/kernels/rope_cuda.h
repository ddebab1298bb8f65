// Launcher of the fused rotary-embedding kernel (rope_cuda.cu); raw pointers, no torch (see rope.h).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType: float32, float16, bfloat16

namespace lota::kernels {

/// out [B, H, T, D] contiguous = x·cos + rotate_half(x)·sin, x read through its strides (in
/// elements), cos and sin contiguous [B, T, D]; all of type t. Returns the cudaError_t of the launch.
int rope_cuda_launch(const void* x, const int64_t (&x_strides)[4], const void* cos, const void* sin, void* out,
                     const int64_t (&sizes)[4], GemvType t, void* stream);

}  // namespace lota::kernels
