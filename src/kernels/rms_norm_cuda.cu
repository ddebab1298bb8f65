// Fused RMSNorm (see rms_norm.h): one block per row. The sum of squares is taken in float32 in a
// fixed order that depends only on H and the dtype: thread t owns the runs of V = 16 bytes / element
// size elements starting at (t + j·THREADS)·V, added in order, then a shuffle tree per warp and the warps
// in order. So the result is deterministic and the same whichever kernel below runs; it differs from
// ATen's reduction only in that order (an ulp of the float32 variance at most, which rounding to 16 bits
// almost always hides; the CUDA test counts). The rest follows the formula's roundings exactly:
// var = Σ·(1/H), rsqrtf(var + eps), x·r rounded to the dtype, then w·y in float32 and rounded (ATen's
// 16-bit multiply). With a residual, the row normalised is x + residual rounded to the dtype (ATen's
// add), which is also written out.
//
// rows of at most THREADS·REG_ELEMS elements with 16-byte aligned pointers are read once, with 16-byte
// loads, and held in registers (every decode step of a Llama model); other rows are read twice.
#include <cuda_runtime.h>

#include "kernels/quant_gemv_io.cuh"
#include "kernels/rms_norm_cuda.h"

namespace lota::kernels {
namespace {

constexpr int THREADS = 256;
constexpr int REG_ELEMS = 32;  // elements a thread holds in registers: H up to 8192

template <typename T>
struct NormArgs {
    const T* x;
    const T* residual;  // null: no residual
    T* sum;             // x + residual (with a residual)
    const T* w;
    T* out;
    int64_t H;
    float eps;
};

// The block's total of every thread's v, in the fixed order described above.
__device__ __forceinline__ float block_sum(float v, float* warp_sums) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; ++i) total += warp_sums[i];
    return total;
}

// x (+ residual) of element e as float, the sum rounded to T and stored when there is a residual.
template <typename T, bool RESIDUAL>
__device__ __forceinline__ float input_at(const NormArgs<T>& a, int64_t e) {
    if constexpr (!RESIDUAL) return to_float(a.x[e]);
    const T s = from_float<T>(to_float(a.x[e]) + to_float(a.residual[e]));
    a.sum[e] = s;
    return to_float(s);
}

// Any row: element by element, in the same order as the register kernel; the second pass reads the
// row again (from L2).
template <typename T, bool RESIDUAL>
__global__ void __launch_bounds__(THREADS) rms_norm_kernel(NormArgs<T> a) {
    allow_dependents_early();  // the next product may start loading its weights
    constexpr int V = 16 / sizeof(T);
    __shared__ float warp_sums[THREADS / 32];
    const int64_t row = static_cast<int64_t>(blockIdx.x) * a.H, H = a.H;
    float ss = 0.0f;
    for (int64_t base = static_cast<int64_t>(threadIdx.x) * V; base < H; base += THREADS * V)
#pragma unroll
        for (int u = 0; u < V; ++u)
            if (base + u < H) {
                const float v = input_at<T, RESIDUAL>(a, row + base + u);
                ss = fmaf(v, v, ss);
            }
    const float r = rsqrtf(block_sum(ss, warp_sums) * (1.0f / static_cast<float>(H)) + a.eps);
    const T* src = RESIDUAL ? a.sum : a.x;  // this thread's own stores: visible to it
    for (int64_t base = static_cast<int64_t>(threadIdx.x) * V; base < H; base += THREADS * V)
#pragma unroll
        for (int u = 0; u < V; ++u)
            if (base + u < H) {
                const float y = to_float(from_float<T>(to_float(src[row + base + u]) * r));
                a.out[row + base + u] = from_float<T>(to_float(a.w[base + u]) * y);
            }
}

// Rows of H ≤ THREADS·REG_ELEMS, H a multiple of V, 16-byte aligned: one 16-byte load per run, the row
// held in registers between the sum and the output.
template <typename T, bool RESIDUAL>
__global__ void __launch_bounds__(THREADS) rms_norm_registers_kernel(NormArgs<T> a) {
    allow_dependents_early();  // the next product may start loading its weights
    constexpr int V = 16 / sizeof(T), RUNS = REG_ELEMS / V;
    union Run {
        uint4 raw;
        T e[V];
    };
    __shared__ float warp_sums[THREADS / 32];
    const int64_t row = static_cast<int64_t>(blockIdx.x) * a.H;
    const int runs = static_cast<int>(a.H / V);
    float v[RUNS][V];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < RUNS; ++j) {
        const int run = threadIdx.x + j * THREADS;
        if (run >= runs) break;
        Run x;
        x.raw = __ldg(reinterpret_cast<const uint4*>(a.x + row) + run);
        if constexpr (RESIDUAL) {
            Run res, s;
            res.raw = __ldg(reinterpret_cast<const uint4*>(a.residual + row) + run);
#pragma unroll
            for (int u = 0; u < V; ++u) s.e[u] = from_float<T>(to_float(x.e[u]) + to_float(res.e[u]));
            reinterpret_cast<uint4*>(a.sum + row)[run] = s.raw;
            x = s;
        }
#pragma unroll
        for (int u = 0; u < V; ++u) {
            v[j][u] = to_float(x.e[u]);
            ss = fmaf(v[j][u], v[j][u], ss);
        }
    }
    const float r = rsqrtf(block_sum(ss, warp_sums) * (1.0f / static_cast<float>(a.H)) + a.eps);
#pragma unroll
    for (int j = 0; j < RUNS; ++j) {
        const int run = threadIdx.x + j * THREADS;
        if (run >= runs) break;
        Run w, y;
        w.raw = __ldg(reinterpret_cast<const uint4*>(a.w) + run);
#pragma unroll
        for (int u = 0; u < V; ++u) y.e[u] = from_float<T>(to_float(w.e[u]) * to_float(from_float<T>(v[j][u] * r)));
        reinterpret_cast<uint4*>(a.out + row)[run] = y.raw;
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
int launch_norm(const void* x, const void* residual, void* sum, const void* w, void* out, int64_t rows, int64_t H,
                float eps, cudaStream_t stream) {
    constexpr int V = 16 / sizeof(T);
    const NormArgs<T> a{static_cast<const T*>(x), static_cast<const T*>(residual), static_cast<T*>(sum),
                        static_cast<const T*>(w), static_cast<T*>(out), H, eps};
    const bool registers = H % V == 0 && H <= static_cast<int64_t>(THREADS) * REG_ELEMS && aligned16(x) &&
                           aligned16(w) && aligned16(out) && (!residual || (aligned16(residual) && aligned16(sum)));
    const auto grid = static_cast<unsigned>(rows);
    if (registers && residual)
        rms_norm_registers_kernel<T, true><<<grid, THREADS, 0, stream>>>(a);
    else if (registers)
        rms_norm_registers_kernel<T, false><<<grid, THREADS, 0, stream>>>(a);
    else if (residual)
        rms_norm_kernel<T, true><<<grid, THREADS, 0, stream>>>(a);
    else
        rms_norm_kernel<T, false><<<grid, THREADS, 0, stream>>>(a);
    return static_cast<int>(cudaGetLastError());
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

int rms_norm_cuda_launch(const void* x, const void* residual, void* sum, const void* w, void* out, int64_t rows,
                         int64_t H, float eps, GemvType t, void* stream) {
    if (rows == 0 || H == 0) return 0;
    const auto st = static_cast<cudaStream_t>(stream);
    switch (t) {
        case GemvType::F16: return launch_norm<__half>(x, residual, sum, w, out, rows, H, eps, st);
        case GemvType::BF16: return launch_norm<__nv_bfloat16>(x, residual, sum, w, out, rows, H, eps, st);
        default: return launch_norm<float>(x, residual, sum, w, out, rows, H, eps, st);
    }
}

}  // namespace lota::kernels
