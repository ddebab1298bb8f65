// Launcher of the fused RMSNorm kernel (rms_norm_cuda.cu); raw pointers, no torch (see rms_norm.h).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType: float32, float16, bfloat16

namespace lota::kernels {

/// out[r, :] = w · round(s · rsqrt(mean(s²) + eps)) for r < rows, with s = x[r, :], or with a residual
/// s = round(x[r, :] + residual[r, :]), which is also written to sum (residual and sum both null or
/// neither). All of type t, contiguous rows of H; sum must not overlap x or residual. Returns the
/// cudaError_t of the launch (0 = ok).
int rms_norm_cuda_launch(const void* x, const void* residual, void* sum, const void* w, void* out, int64_t rows,
                         int64_t H, float eps, GemvType t, void* stream);

/// The gradient in x of that norm (rms_norm.h, rms_norm_backward): per row, with u = float(round(g·w)),
/// r = rsqrt(mean(x²) + eps): dx = round((u − x·r²·mean(u·x))·r). x, w, g, dx of type t, contiguous
/// rows of H. Returns the cudaError_t of the launch (0 = ok).
int rms_norm_backward_cuda_launch(const void* x, const void* w, const void* g, void* dx, int64_t rows, int64_t H,
                                  float eps, GemvType t, void* stream);

}  // namespace lota::kernels
