// Decode-step attention over a KV cache (see decode_attention.h), flash-decoding style. Memory-bound: each
// filled slot's K and V rows are read once per (b, kv head) and serve all G = H/Hkv query heads of the group.
// One block of 4 warps per (b, kv head, slot range). A warp takes U consecutive slots per step (their loads in
// flight together); each lane holds D/32 elements of q (for the G heads), K and V; dot products are warp
// shuffle sums, and each head keeps an online softmax (running max m, sum l, acc) in float32, base 2 (q is
// scaled by scale·log2 e). The warps merge in shared memory. With several slot ranges (only when B·Hkv blocks
// would leave SMs idle) each range writes float32 partials, merged by a second kernel in range order, so the
// result is deterministic. p = write_pos is read here, on the device: launches depend on shapes only.
#include <cuda_runtime.h>

#include "kernels/decode_attention_cuda.h"
#include "kernels/quant_gemv_io.cuh"

namespace lota::kernels {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int64_t kMinRange = 64;  // fewest slots per range: smaller ranges cost more in partials than they read
constexpr int64_t kTargetBlocksPerSm = 2;  // the cache is cut into ranges until B·Hkv·splits reaches this per SM
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// E consecutive elements of a row in one load of E·sizeof(T) <= 16 bytes (rows of 64 or 128 elements of a
// 16-byte aligned cache keep every lane's slice aligned).
template <typename T, int E>
struct alignas(sizeof(T) * E) Slice {
    T x[E];
};

template <typename T, int E>
__device__ __forceinline__ void load_slice(const T* p, float (&out)[E]) {
    const Slice<T, E> s = *reinterpret_cast<const Slice<T, E>*>(p);
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = to_float(s.x[e]);
}

// The new token's slot, clamped to the cache so a bad write_pos cannot read outside it.
__device__ __forceinline__ int64_t new_token_slot(const DecodeAttentionArgs& a) {
    const int64_t p = *a.write_pos;
    return p < 0 ? 0 : p >= a.S ? a.S - 1 : p;
}

// Slots per range: the p + 1 filled slots cut into a.splits ranges of ceil((p + 1) / splits), at least
// kMinRange, so the work spreads over the blocks whatever p is; range i is [i·len, min((i + 1)·len, p + 1)).
__device__ __forceinline__ int64_t range_len(int64_t p, int splits) {
    const int64_t len = (p + splits) / splits;
    return len > kMinRange ? len : kMinRange;
}

// The factor exp2(m − M) that moves a softmax state of running max m under the larger max M; 0 for a state
// that saw no slot (m = −inf), so empty warps and ranges add nothing and never make NaN.
__device__ __forceinline__ float rescale(float m, float M) { return m == -INFINITY ? 0.0f : exp2f(m - M); }

template <typename T, int D, int GMAX>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(DecodeAttentionArgs a) {
    constexpr int E = D / 32;  // elements of a row per lane
    constexpr int U = GMAX >= 8 ? 2 : GMAX >= 4 ? 4 : 8;  // slots per warp step: ~16 scores in registers
    __shared__ float warp_acc[kWarps][GMAX][D];
    __shared__ float warp_m[kWarps][GMAX], warp_l[kWarps][GMAX];

    const int G = static_cast<int>(a.H / a.Hkv);
    const int split = static_cast<int>(blockIdx.x % a.splits);
    const int64_t bk = blockIdx.x / a.splits;  // b·Hkv + kv head
    const int64_t b = bk / a.Hkv, kvh = bk % a.Hkv;
    const int64_t p = new_token_slot(a);
    const int64_t len = range_len(p, a.splits);
    const int64_t begin = split * len, end = begin + len < p + 1 ? begin + len : p + 1;
    if (begin >= end) return;  // a range past p: the merge skips it as well
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

    float q[GMAX][E], acc[GMAX][E], m[GMAX], l[GMAX];
    const T* qb = static_cast<const T*>(a.q) + b * a.q_stride_b + kvh * G * a.q_stride_h + lane * E;
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
#pragma unroll
        for (int e = 0; e < E; ++e) {
            q[g][e] = g < G ? to_float(qb[g * a.q_stride_h + e]) * (a.scale * kLog2e) : 0.0f;
            acc[g][e] = 0.0f;
        }
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }

    const T* kb = static_cast<const T*>(a.k) + bk * a.S * D + lane * E;
    const T* vb = static_cast<const T*>(a.v) + bk * a.S * D + lane * E;
    const bool* mask = a.key_mask + b * a.S;
    for (int64_t s0 = begin + warp * U; s0 < end; s0 += kWarps * U) {
        // Masked slots of the range are loaded too (they are filled, with padding): no load waits for the
        // mask, which gates only the arithmetic below.
        float kx[U][E], vx[U][E];
#pragma unroll
        for (int j = 0; j < U; ++j) {
            if (s0 + j < end) {
                load_slice(kb + (s0 + j) * D, kx[j]);
                load_slice(vb + (s0 + j) * D, vx[j]);
            } else {
#pragma unroll
                for (int e = 0; e < E; ++e) kx[j][e] = vx[j][e] = 0.0f;
            }
        }
        bool ok[U], any = false;
#pragma unroll
        for (int j = 0; j < U; ++j) {
            const int64_t s = s0 + j;
            ok[j] = s < end && (s == p || mask[s]);  // the same in every lane: branches stay uniform
            any = any || ok[j];
        }
        if (!any) continue;
        float sc[U][GMAX];
#pragma unroll
        for (int j = 0; j < U; ++j)
#pragma unroll
            for (int g = 0; g < GMAX; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int e = 0; e < E; ++e) dot = fmaf(q[g][e], kx[j][e], dot);
                sc[j][g] = dot;
            }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int j = 0; j < U; ++j)
#pragma unroll
                for (int g = 0; g < GMAX; ++g)
                    if (g < G) sc[j][g] += __shfl_xor_sync(0xffffffffu, sc[j][g], o);
#pragma unroll
        for (int g = 0; g < GMAX; ++g) {
            if (g >= G) continue;
            float mx = m[g];
#pragma unroll
            for (int j = 0; j < U; ++j)
                if (ok[j]) mx = fmaxf(mx, sc[j][g]);
            const float f = rescale(m[g], mx);
            l[g] *= f;
#pragma unroll
            for (int e = 0; e < E; ++e) acc[g][e] *= f;
#pragma unroll
            for (int j = 0; j < U; ++j) {
                if (!ok[j]) continue;
                const float pj = exp2f(sc[j][g] - mx);
                l[g] += pj;
#pragma unroll
                for (int e = 0; e < E; ++e) acc[g][e] = fmaf(pj, vx[j][e], acc[g][e]);
            }
            m[g] = mx;
        }
    }

#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        if (g >= G) continue;
#pragma unroll
        for (int e = 0; e < E; ++e) warp_acc[warp][g][lane * E + e] = acc[g][e];
        if (lane == 0) {
            warp_m[warp][g] = m[g];
            warp_l[warp][g] = l[g];
        }
    }
    __syncthreads();
    const int64_t rows = a.B * a.H;
    for (int i = threadIdx.x; i < G * D; i += kThreads) {
        const int g = i / D, d = i % D;
        float M = -INFINITY, L = 0.0f, A = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) M = fmaxf(M, warp_m[w][g]);
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            const float f = rescale(warp_m[w][g], M);
            L = fmaf(warp_l[w][g], f, L);
            A = fmaf(warp_acc[w][g][d], f, A);
        }
        const int64_t row = b * a.H + kvh * G + g;
        if (a.splits == 1) {
            store_as(a.out, a.t, row * D + d, A / L);  // this range holds slot p, so L >= 1
            continue;
        }
        a.partial[(split * rows + row) * D + d] = A;
        if (d == 0) {
            float* ml = a.partial + a.splits * rows * D + (split * rows + row) * 2;
            ml[0] = M;
            ml[1] = L;
        }
    }
}

// One block of D threads per (b, h) row: the partials of the ranges that hold slots, merged in range order.
__global__ void decode_attention_merge_kernel(DecodeAttentionArgs a) {
    const int64_t rows = a.B * a.H, row = blockIdx.x;
    const int d = threadIdx.x;
    const int64_t p = new_token_slot(a);
    const int64_t len = range_len(p, a.splits);
    const int n = static_cast<int>((p + len) / len);  // ceil((p + 1) / len) <= splits
    const float* ml = a.partial + a.splits * rows * a.D;
    float M = -INFINITY, L = 0.0f, A = 0.0f;
    for (int i = 0; i < n; ++i) M = fmaxf(M, ml[(i * rows + row) * 2]);
    for (int i = 0; i < n; ++i) {
        const float f = rescale(ml[(i * rows + row) * 2], M);
        L = fmaf(ml[(i * rows + row) * 2 + 1], f, L);
        A = fmaf(a.partial[(i * rows + row) * a.D + d], f, A);
    }
    store_as(a.out, a.t, row * a.D + d, A / L);  // the range of slot p has L >= 1
}

template <typename T, int D, int GMAX>
cudaError_t launch(const DecodeAttentionArgs& a, cudaStream_t stream) {
    const auto blocks = static_cast<unsigned>(a.B * a.Hkv * a.splits);
    decode_attention_kernel<T, D, GMAX><<<blocks, kThreads, 0, stream>>>(a);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess || a.splits == 1) return err;
    decode_attention_merge_kernel<<<static_cast<unsigned>(a.B * a.H), static_cast<unsigned>(D), 0, stream>>>(a);
    return cudaGetLastError();
}

// Group sizes round up to 1, 2, 4 or 8 heads: the kernel loops over G at run time within that bound.
template <typename T, int D>
cudaError_t launch_group(const DecodeAttentionArgs& a, cudaStream_t stream) {
    const int64_t G = a.H / a.Hkv;
    if (G <= 1) return launch<T, D, 1>(a, stream);
    if (G <= 2) return launch<T, D, 2>(a, stream);
    if (G <= 4) return launch<T, D, 4>(a, stream);
    return launch<T, D, 8>(a, stream);
}

template <typename T>
cudaError_t launch_dim(const DecodeAttentionArgs& a, cudaStream_t stream) {
    return a.D == 64 ? launch_group<T, 64>(a, stream) : launch_group<T, 128>(a, stream);
}

}  // namespace

void decode_attention_cuda_plan(DecodeAttentionArgs& a, int sm_count) {
    // Ranges only while the B·Hkv blocks would leave SMs short of kTargetBlocksPerSm; at least kMinRange slots each.
    const int64_t blocks = a.B * a.Hkv, target = kTargetBlocksPerSm * sm_count;
    int64_t splits = blocks > 0 ? (target + blocks - 1) / blocks : 1;
    const int64_t most = (a.S + kMinRange - 1) / kMinRange;
    splits = splits > most ? most : splits;
    a.splits = static_cast<int>(splits < 1 ? 1 : splits);
}

int64_t decode_attention_cuda_partial_floats(const DecodeAttentionArgs& a) {
    return a.splits > 1 ? a.splits * a.B * a.H * (a.D + 2) : 0;
}

int decode_attention_cuda_launch(const DecodeAttentionArgs& a, void* stream_ptr) {
    if (a.B == 0 || a.H == 0) return 0;
    if (!decode_attention_cuda_head_dim_ok(a.D) || a.Hkv <= 0 || a.H % a.Hkv != 0 ||
        a.H / a.Hkv > kDecodeAttentionMaxGroup || a.splits < 1 || (a.splits > 1 && !a.partial))
        return static_cast<int>(cudaErrorInvalidValue);
    const auto stream = static_cast<cudaStream_t>(stream_ptr);
    switch (a.t) {
        case GemvType::F16: return static_cast<int>(launch_dim<__half>(a, stream));
        case GemvType::BF16: return static_cast<int>(launch_dim<__nv_bfloat16>(a, stream));
        default: return static_cast<int>(launch_dim<float>(a, stream));
    }
}

}  // namespace lota::kernels
