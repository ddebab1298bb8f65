// Fused RMSNorm (see rms_norm.h): one block per row. The sum of squares is taken in float32 in a
// fixed order (each thread's strided elements, a shuffle tree per warp, the warps in order), so the
// result is deterministic; it differs from ATen's reduction only in that order (an ulp of the
// float32 variance at most, which rounding to 16 bits almost always hides; the CUDA test counts).
// The rest follows the formula's roundings exactly: var = Σ·(1/H), rsqrtf(var + eps), x·r rounded
// to the dtype, then w·y computed in float32 and rounded (ATen's 16-bit multiply).
#include <cuda_runtime.h>

#include "kernels/quant_gemv_io.cuh"
#include "kernels/rms_norm_cuda.h"

namespace lota::kernels {
namespace {

constexpr int THREADS = 256;

__global__ void __launch_bounds__(THREADS) rms_norm_kernel(const void* x, const void* w, void* out, int64_t H,
                                                            float eps, GemvType t) {
    __shared__ float warp_sums[THREADS / 32];
    const int64_t row = static_cast<int64_t>(blockIdx.x) * H;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < H; i += THREADS) {
        const float v = load_as_float(x, t, row + i);
        ss = fmaf(v, v, ss);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = ss;
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; ++i) total += warp_sums[i];
    const float r = rsqrtf(total * (1.0f / static_cast<float>(H)) + eps);
    for (int64_t i = threadIdx.x; i < H; i += THREADS) {
        const float y = round_as(t, load_as_float(x, t, row + i) * r);
        store_as(out, t, row + i, load_as_float(w, t, i) * y);
    }
}

// Block sum of two per-thread partials (the same fixed order as the forward's).
__device__ float2 block_sum2(float a, float b, float2* warp_sums) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = make_float2(a, b);
    __syncthreads();
    float2 total = make_float2(0.0f, 0.0f);
#pragma unroll
    for (int i = 0; i < THREADS / 32; ++i) {
        total.x += warp_sums[i].x;
        total.y += warp_sums[i].y;
    }
    return total;
}

// One block per row: Σx² and Σu·x in one read of the row, then dx in a second (the row is in L2).
__global__ void __launch_bounds__(THREADS) rms_norm_backward_kernel(const void* x, const void* w, const void* g,
                                                                     void* dx, int64_t H, float eps, GemvType t) {
    __shared__ float2 warp_sums[THREADS / 32];
    const int64_t row = static_cast<int64_t>(blockIdx.x) * H;
    float ss = 0.0f, ux = 0.0f;
    for (int64_t i = threadIdx.x; i < H; i += THREADS) {
        const float v = load_as_float(x, t, row + i);
        const float u = round_as(t, load_as_float(g, t, row + i) * load_as_float(w, t, i));
        ss = fmaf(v, v, ss);
        ux = fmaf(u, v, ux);
    }
    const float2 sums = block_sum2(ss, ux, warp_sums);
    const float inv_h = 1.0f / static_cast<float>(H);
    const float r = rsqrtf(sums.x * inv_h + eps);
    const float c = r * r * (sums.y * inv_h);
    for (int64_t i = threadIdx.x; i < H; i += THREADS) {
        const float v = load_as_float(x, t, row + i);
        const float u = round_as(t, load_as_float(g, t, row + i) * load_as_float(w, t, i));
        store_as(dx, t, row + i, (u - v * c) * r);
    }
}

}  // namespace

int rms_norm_backward_cuda_launch(const void* x, const void* w, const void* g, void* dx, int64_t rows, int64_t H,
                                  float eps, GemvType t, void* stream) {
    if (rows == 0 || H == 0) return 0;
    rms_norm_backward_kernel<<<static_cast<unsigned>(rows), THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
        x, w, g, dx, H, eps, t);
    return static_cast<int>(cudaGetLastError());
}

int rms_norm_cuda_launch(const void* x, const void* w, void* out, int64_t rows, int64_t H, float eps, GemvType t,
                         void* stream) {
    if (rows == 0 || H == 0) return 0;
    rms_norm_kernel<<<static_cast<unsigned>(rows), THREADS, 0, static_cast<cudaStream_t>(stream)>>>(x, w, out, H, eps,
                                                                                                      t);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace lota::kernels
