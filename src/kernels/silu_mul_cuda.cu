// SwiGLU (see silu_mul.h) with ATen's roundings: silu in float32 as g / (1 + expf(−g)) (IEEE division
// and the accurate expf, as ATen's CUDA silu), rounded to the dtype, times up in float32, rounded. Each
// thread makes V = 16 bytes / element size consecutive outputs of one row; when n is a multiple of V and
// the pointers are 16-byte aligned it reads and writes them with 16-byte accesses.
#include <cuda_runtime.h>

#include "kernels/quant_gemv_io.cuh"
#include "kernels/silu_mul_cuda.h"

namespace lota::kernels {
namespace {

template <typename T>
__device__ __forceinline__ T silu_times(T g, T u) {
    const float x = to_float(g);
    const T s = from_float<T>(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))));
    return from_float<T>(__fmul_rn(to_float(s), to_float(u)));
}

template <typename T, bool VECTOR>
__global__ void silu_mul_kernel(const T* gate, const T* up, int64_t ld, T* out, int64_t rows, int64_t n) {
    allow_dependents_early();  // the down product may start loading its weights
    constexpr int V = 16 / sizeof(T);
    const int64_t per_row = (n + V - 1) / V;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * per_row) return;
    const int64_t r = i / per_row, c0 = i % per_row * V;
    const T* g = gate + r * ld + c0;
    const T* u = up + r * ld + c0;
    T* o = out + r * n + c0;
    if constexpr (VECTOR) {
        union Run {
            uint4 raw;
            T e[V];
        } gv, uv, ov;
        gv.raw = __ldg(reinterpret_cast<const uint4*>(g));
        uv.raw = __ldg(reinterpret_cast<const uint4*>(u));
#pragma unroll
        for (int k = 0; k < V; ++k) ov.e[k] = silu_times(gv.e[k], uv.e[k]);
        *reinterpret_cast<uint4*>(o) = ov.raw;
    } else {
        for (int k = 0; k < V && c0 + k < n; ++k) o[k] = silu_times(g[k], u[k]);
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
int launch(const void* gate, const void* up, int64_t ld, void* out, int64_t rows, int64_t n, cudaStream_t stream) {
    constexpr int V = 16 / sizeof(T);
    const int64_t threads = rows * ((n + V - 1) / V);
    const auto grid = static_cast<unsigned>((threads + 255) / 256);
    const auto* g = static_cast<const T*>(gate);
    const auto* u = static_cast<const T*>(up);
    auto* o = static_cast<T*>(out);
    if (n % V == 0 && ld % V == 0 && aligned16(gate) && aligned16(up) && aligned16(out))
        silu_mul_kernel<T, true><<<grid, 256, 0, stream>>>(g, u, ld, o, rows, n);
    else
        silu_mul_kernel<T, false><<<grid, 256, 0, stream>>>(g, u, ld, o, rows, n);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

int silu_mul_cuda_launch(const void* gate, const void* up, int64_t ld, void* out, int64_t rows, int64_t n, GemvType t,
                         void* stream) {
    if (rows == 0 || n == 0) return 0;
    const auto st = static_cast<cudaStream_t>(stream);
    switch (t) {
        case GemvType::F16: return launch<__half>(gate, up, ld, out, rows, n, st);
        case GemvType::BF16: return launch<__nv_bfloat16>(gate, up, ld, out, rows, n, st);
        default: return launch<float>(gate, up, ld, out, rows, n, st);
    }
}

}  // namespace lota::kernels
