// Shared by the decode kernels (quant_gemv_cuda.cu, quant_gemv_tc_cuda.cu, rms_norm_cuda.cu,
// rope_cuda.cu, silu_mul_cuda.cu): element access and rounding by GemvType (float32, float16 or bfloat16) and device queries.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"

namespace lota::kernels {

// Programmatic dependent launch (compute capability 9.0; no-ops below): a kernel that calls
// allow_dependents_early() lets the next kernel of its stream, when that one is launched with
// cudaLaunchAttributeProgrammaticStreamSerialization, start before it ends; that kernel must call
// wait_for_previous_kernel() before it reads what the previous kernels write (it may read constant
// data such as weights before). Without the attribute both return at once.
__device__ __forceinline__ void allow_dependents_early() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;");
#endif
}

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

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

/// v rounded to the type t and read back as float (the rounding one 16-bit ATen op applies).
__device__ __forceinline__ float round_as(GemvType t, float v) {
    switch (t) {
        case GemvType::F16: return __half2float(__float2half_rn(v));
        case GemvType::BF16: return __bfloat162float(__float2bfloat16_rn(v));
        default: return v;
    }
}

/// The same conversions with the type known at compile time (templated kernels): to float32, and
/// rounded once from float32.
template <typename T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/// An attribute of the current device, or `fallback` when it cannot be read.
inline int current_device_attribute(cudaDeviceAttr attr, int fallback) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) return fallback;
    return v;
}

}  // namespace lota::kernels
