// Decode attention (see decode_attention.h) in one kernel: a block of 4 warps per (row b, kv head g, range
// of slots). Each block
//   1. rotates its G query heads and the new key (rope.h's formula and roundings) into shared memory; the
//      block whose range holds the write position writes the new key and value to the caches;
//   2. scores its slots, a warp per quarter of the range, a lane per D/32 elements of a key (the new slot's
//      key comes from shared memory: another block may not have written it yet);
//   3. takes the exponentials against the range's maximum per head, and sums them times the values;
//   4. writes (maximum, sum, weighted values) per head as its partial; the last block of (b, g) to finish
//      (an arrival counter, left at zero) rescales and adds the ranges' partials, in range order.
// Everything is float32; the output is rounded once to the dtype. Slots that are not attended are never
// read. The number of ranges depends only on the shapes, so a CUDA graph replays the same launch while
// the write position moves on the device.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/decode_attention_cuda.h"
#include "kernels/quant_gemv_io.cuh"

namespace lota::kernels {
namespace {

constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int MAX_GROUP = 8;    // query heads per kv head
constexpr int MIN_CHUNK = 32;   // slots per range: a multiple of 4 warps × 4 keys a batch
constexpr int MAX_CHUNK = 256;
constexpr int BATCH = 4;        // keys a warp loads before it uses them

// E elements of T, loaded as one vector (two when 32 bytes).
template <typename T, int E>
struct alignas(sizeof(T) * E < 16 ? sizeof(T) * E : 16) RowPiece {
    T v[E];
};

template <typename T> __device__ __forceinline__ float rounded(float v) { return to_float<T>(from_float<T>(v)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Loads slot j's row piece of this lane (from `fresh` in shared memory for the new slot) as floats.
template <typename T, int E>
__device__ __forceinline__ void load_piece(const T* cache, int64_t j, int64_t p, const float* fresh, int lane,
                                           float (&out)[E]) {
    if (j == p) {
#pragma unroll
        for (int e = 0; e < E; ++e) out[e] = fresh[lane * E + e];
        return;
    }
    const RowPiece<T, E> r = reinterpret_cast<const RowPiece<T, E>*>(cache + j * (E * 32))[lane];
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = to_float<T>(r.v[e]);
}

template <typename T, int D>
__global__ void __launch_bounds__(THREADS) decode_attention_kernel(DecodeAttentionArgs a) {
    constexpr int E = D / 32;  // elements of a row per lane
    constexpr int HALF = D / 2;
    extern __shared__ float smem[];
    __shared__ bool last;
    const int G = static_cast<int>(a.H / a.Hkv), C = static_cast<int>(a.chunk_keys);
    float* q_s = smem;          // [G][D] the rotated queries; at the end, the warps' sums of p·v
    float* kn_s = q_s + G * D;  // [D] the new key, rotated
    float* vn_s = kn_s + D;     // [D] the new value
    float* p_s = vn_s + D;      // [G][C] the scores, then their exponentials
    float* m_s = p_s + G * C;   // [G] the range's maximum score per head
    float* l_s = m_s + G;       // [G] the sum of the exponentials

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int64_t bg = blockIdx.y, b = bg / a.Hkv, g = bg % a.Hkv;
    const int64_t c0 = static_cast<int64_t>(blockIdx.x) * C;
    const int64_t S = a.S, p = *a.write_pos;
    const bool p_in = p >= 0 && p < S;

    // 1. Rotation: pairs (d, d + D/2) of the G query heads and the key, as rope_kernel rounds them.
    const T* cs = static_cast<const T*>(a.cos) + b * D;
    const T* sn = static_cast<const T*>(a.sin) + b * D;
    for (int i = tid; i < (G + 1) * HALF; i += THREADS) {
        const int r = i / HALF, d = i % HALF;
        const T* src = r < G ? static_cast<const T*>(a.q) + b * a.q_row + (g * G + r) * D
                             : static_cast<const T*>(a.k) + b * a.k_row + g * D;
        const float x1 = to_float<T>(src[d]), x2 = to_float<T>(src[d + HALF]);
        const float c1 = to_float<T>(cs[d]), c2 = to_float<T>(cs[d + HALF]);
        const float s1 = to_float<T>(sn[d]), s2 = to_float<T>(sn[d + HALF]);
        float* dst = r < G ? q_s + r * D : kn_s;
        dst[d] = rounded<T>(__fadd_rn(rounded<T>(__fmul_rn(x1, c1)), rounded<T>(__fmul_rn(-x2, s1))));
        dst[d + HALF] = rounded<T>(__fadd_rn(rounded<T>(__fmul_rn(x2, c2)), rounded<T>(__fmul_rn(x1, s2))));
    }
    const T* vsrc = static_cast<const T*>(a.v) + b * a.v_row + g * D;
    for (int d = tid; d < D; d += THREADS) vn_s[d] = to_float<T>(vsrc[d]);
    __syncthreads();
    const int64_t row0 = bg * S * D;  // this (b, g)'s slot 0 in the caches
    if (p_in && p / C == blockIdx.x) {
        for (int d = tid; d < D; d += THREADS) {
            static_cast<T*>(a.k_cache)[row0 + p * D + d] = from_float<T>(kn_s[d]);
            static_cast<T*>(a.v_cache)[row0 + p * D + d] = from_float<T>(vn_s[d]);
        }
    }

    // 2. Scores: warp w takes slots [c0 + w·C/4, c0 + (w + 1)·C/4), BATCH keys at a time.
    const T* kc = static_cast<const T*>(a.k_cache) + row0;
    const T* vc = static_cast<const T*>(a.v_cache) + row0;
    const bool* mask = a.key_mask + b * S;
    const int per_warp = C / WARPS;
    const int64_t w0 = c0 + warp * per_warp;
    const auto attended = [&](int64_t j) { return j < S && ((p_in && j == p) || mask[j]); };
    float q[MAX_GROUP][E];
#pragma unroll
    for (int gi = 0; gi < MAX_GROUP; ++gi)
#pragma unroll
        for (int e = 0; e < E; ++e) q[gi][e] = gi < G ? q_s[gi * D + lane * E + e] : 0.f;
    for (int j0 = 0; j0 < per_warp; j0 += BATCH) {
        float kr[BATCH][E];
        bool ok[BATCH];
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            ok[u] = attended(w0 + j0 + u);
            if (ok[u]) {
                load_piece<T, E>(kc, w0 + j0 + u, p, kn_s, lane, kr[u]);
            } else {
#pragma unroll
                for (int e = 0; e < E; ++e) kr[u][e] = 0.f;
            }
        }
#pragma unroll
        for (int u = 0; u < BATCH; ++u)
#pragma unroll
            for (int gi = 0; gi < MAX_GROUP; ++gi) {
                if (gi >= G) break;
                float s = 0.f;
#pragma unroll
                for (int e = 0; e < E; ++e) s = fmaf(q[gi][e], kr[u][e], s);
                s = warp_sum(s);
                if (lane == 0) p_s[gi * C + warp * per_warp + j0 + u] = ok[u] ? s * a.scale : -INFINITY;
            }
    }
    __syncthreads();

    // 3. Exponentials against the range's maximum (none attended: maximum −inf, sum 0), then Σ p·v.
    for (int gi = warp; gi < G; gi += WARPS) {
        float* ps = p_s + gi * C;
        float m = -INFINITY;
        for (int j = lane; j < C; j += 32) m = fmaxf(m, ps[j]);
        m = warp_max(m);
        float l = 0.f;
        for (int j = lane; j < C; j += 32) {
            const float e = ps[j] == -INFINITY ? 0.f : expf(ps[j] - m);
            ps[j] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) {
            m_s[gi] = m;
            l_s[gi] = l;
        }
    }
    __syncthreads();
    float acc[MAX_GROUP][E];
#pragma unroll
    for (int gi = 0; gi < MAX_GROUP; ++gi)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[gi][e] = 0.f;
    for (int j0 = 0; j0 < per_warp; j0 += BATCH) {
        float vr[BATCH][E];
        bool ok[BATCH];
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            ok[u] = attended(w0 + j0 + u);
            if (ok[u]) load_piece<T, E>(vc, w0 + j0 + u, p, vn_s, lane, vr[u]);
        }
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            if (!ok[u]) continue;
#pragma unroll
            for (int gi = 0; gi < MAX_GROUP; ++gi) {
                if (gi >= G) break;
                const float pj = p_s[gi * C + warp * per_warp + j0 + u];
#pragma unroll
                for (int e = 0; e < E; ++e) acc[gi][e] = fmaf(pj, vr[u][e], acc[gi][e]);
            }
        }
    }
    // The warps' sums, added in warp order into q_s (no longer read).
    for (int w = 0; w < WARPS; ++w) {
        if (warp == w)
#pragma unroll
            for (int gi = 0; gi < MAX_GROUP; ++gi) {
                if (gi >= G) break;
#pragma unroll
                for (int e = 0; e < E; ++e) {
                    float& dst = q_s[gi * D + lane * E + e];
                    dst = w == 0 ? acc[gi][e] : dst + acc[gi][e];
                }
            }
        __syncthreads();
    }

    // 4. This range's partial: [G maxima | G sums | G·D weighted values].
    const int64_t stride = static_cast<int64_t>(G) * (D + 2);
    float* part = a.partials + (bg * a.chunks + blockIdx.x) * stride;
    for (int i = tid; i < G * D; i += THREADS) part[2 * G + i] = q_s[i];
    if (tid < G) {
        part[tid] = m_s[tid];
        part[G + tid] = l_s[tid];
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        last = atomicAdd(a.counters + bg, 1) == a.chunks - 1;
        if (last) a.counters[bg] = 0;  // for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    const float* parts = a.partials + bg * a.chunks * stride;
    T* out = static_cast<T*>(a.out) + b * a.H * D + g * G * D;
    for (int i = tid; i < G * D; i += THREADS) {
        const int gi = i / D;
        float m = -INFINITY;
        for (int64_t c = 0; c < a.chunks; ++c) m = fmaxf(m, __ldcg(parts + c * stride + gi));
        float l = 0.f, o = 0.f;
        if (m != -INFINITY)
            for (int64_t c = 0; c < a.chunks; ++c) {
                const float* pc = parts + c * stride;
                const float mc = __ldcg(pc + gi);
                if (mc == -INFINITY) continue;
                const float w = expf(mc - m);
                l = fmaf(w, __ldcg(pc + G + gi), l);
                o = fmaf(w, __ldcg(pc + 2 * G + i), o);
            }
        out[i] = from_float<T>(l > 0.f ? o / l : 0.f);
    }
}

template <typename T>
int launch_for_type(const DecodeAttentionArgs& a, dim3 grid, size_t smem, cudaStream_t st) {
    switch (a.D) {
        case 64: decode_attention_kernel<T, 64><<<grid, THREADS, smem, st>>>(a); break;
        case 128: decode_attention_kernel<T, 128><<<grid, THREADS, smem, st>>>(a); break;
        case 256: decode_attention_kernel<T, 256><<<grid, THREADS, smem, st>>>(a); break;
        default: return static_cast<int>(cudaErrorInvalidValue);
    }
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

bool decode_attention_cuda_supports(int64_t H, int64_t Hkv, int64_t D) {
    return Hkv > 0 && H % Hkv == 0 && H / Hkv <= MAX_GROUP && (D == 64 || D == 128 || D == 256);
}

void decode_attention_cuda_plan(DecodeAttentionArgs& a, int sm_count) {
    const int64_t pairs = std::max<int64_t>(1, a.B * a.Hkv);
    const int64_t ranges = std::max<int64_t>(1, (2 * static_cast<int64_t>(sm_count) + pairs - 1) / pairs);
    const int64_t keys = (a.S + ranges - 1) / ranges;
    a.chunk_keys = std::min<int64_t>(MAX_CHUNK, std::max<int64_t>(MIN_CHUNK, (keys + 31) / 32 * 32));
    a.chunks = (a.S + a.chunk_keys - 1) / a.chunk_keys;
}

int64_t decode_attention_cuda_partials(const DecodeAttentionArgs& a) {
    return a.B * a.Hkv * a.chunks * (a.H / a.Hkv) * (a.D + 2);
}

int decode_attention_cuda_launch(const DecodeAttentionArgs& a, void* stream) {
    if (a.B == 0 || a.S == 0) return 0;
    const int64_t G = a.H / a.Hkv;
    const size_t smem = sizeof(float) * static_cast<size_t>(G * a.D + 2 * a.D + G * a.chunk_keys + 2 * G);
    const dim3 grid(static_cast<unsigned>(a.chunks), static_cast<unsigned>(a.B * a.Hkv));
    const auto st = static_cast<cudaStream_t>(stream);
    switch (a.t) {
        case GemvType::BF16: return launch_for_type<__nv_bfloat16>(a, grid, smem, st);
        case GemvType::F16: return launch_for_type<__half>(a, grid, smem, st);
        default: return launch_for_type<float>(a, grid, smem, st);
    }
}

}  // namespace lota::kernels
