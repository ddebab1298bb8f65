// Shared by the decode-product kernels (quant_gemv_cuda.cu and quant_gemv_tc_cuda.cu): element
// access by GemvType (x, bias and output come as float32, float16 or bfloat16) and device queries.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"

namespace lota::kernels {

__device__ __forceinline__ float load_as_float(const void* p, GemvType t, int64_t i) {
    switch (t) {
        case GemvType::F16: return __half2float(static_cast<const __half*>(p)[i]);
        case GemvType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
        default: return static_cast<const float*>(p)[i];
    }
}

/// Rounds v once to the type t.
__device__ __forceinline__ void store_as(void* p, GemvType t, int64_t i, float v) {
    switch (t) {
        case GemvType::F16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
        case GemvType::BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
        default: static_cast<float*>(p)[i] = v; break;
    }
}

/// An attribute of the current device, or `fallback` when it cannot be read.
inline int current_device_attribute(cudaDeviceAttr attr, int fallback) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) return fallback;
    return v;
}

}  // namespace lota::kernels
