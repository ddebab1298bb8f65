// Launcher of the fused RMSNorm kernel (rms_norm_cuda.cu); raw pointers, no torch (see rms_norm.h).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType: float32, float16, bfloat16

namespace lota::kernels {

/// out[r, :] = w · round(x[r, :] · rsqrt(mean(x[r, :]²) + eps)) for r < rows; x, w, out of type t,
/// contiguous rows of H. Returns the cudaError_t of the launch (0 = ok).
int rms_norm_cuda_launch(const void* x, const void* w, void* out, int64_t rows, int64_t H, float eps, GemvType t,
                         void* stream);

}  // namespace lota::kernels
