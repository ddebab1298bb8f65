// Decode attention (see decode_attention.h) in one kernel: a block of 4 warps per (row b, kv head g, range
// of slots). Each block
//   1. rotates its G query heads and the new key (rope.h's formula and roundings) into shared memory; the
//      block whose range holds the write position writes the new key and value to the caches;
//   2. lets each warp run an online softmax over its quarter of the range, BATCH slots at a time: their
//      keys and values are loaded together, the next batch's while this one is used (the new slot's from
//      shared memory: another block may not have written it yet), a lane holding D/32 elements of each,
//      and the scores summed across the warp;
//   3. adds the four warps' (maximum, sum, weighted values) per head into the range's partial; with one
//      range that is the output, else the last block of (b, g) to finish (an arrival counter, left at zero)
//      adds the ranges' partials, in range order.
// The work a warp does in sequence is kept short (its mask bits and the write position read together once,
// its loads issued ahead, no block-wide step inside the loop): a decode step launches few blocks, so
// latency is what costs.
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
constexpr int MAX_GROUP = 8;    // query heads per kv head (the kernel's GP: 1, 2, 4 or 8, at least G)
constexpr int MIN_CHUNK = 32;   // slots per range: a multiple of 4 warps × 8 slots a batch (the plan: 64)
constexpr int MAX_CHUNK = 256;  // 64 slots a warp: its mask bits fit two words
constexpr int64_t MAX_SCRATCH_BYTES = 48 * 1024 - 64;  // dynamic shared memory without an opt-in

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

// A row piece as floats, or this lane's part of `fresh` (shared memory) for the new slot.
template <typename T, int E>
__device__ __forceinline__ void piece_floats(const RowPiece<T, E>& r, bool is_new, const float* fresh, int lane,
                                             float (&out)[E]) {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = is_new ? fresh[lane * E + e] : to_float<T>(r.v[e]);
}

// exp(x − m): 0 for a slot not attended (x = −inf), 1 exactly at the maximum (a lone slot's output is
// then its value exactly).
__device__ __forceinline__ float exp_from(float x, float m) {
    return x == -INFINITY ? 0.f : x == m ? 1.f : __expf(x - m);
}

// Shared floats of scratch: q_s [G][D], kn_s [D], vn_s [D], acc_s [WARPS][G][D] (in the last block the
// ranges' weights [G][chunks]), ml_s [WARPS][G][2].
__host__ __device__ inline int64_t scratch_floats(int64_t G, int64_t D, int64_t chunks) {
    const int64_t acc = WARPS * G * D > G * chunks ? WARPS * G * D : G * chunks;
    return G * D + 2 * D + acc + WARPS * G * 2;
}

// GP: G rounded up to a power of two, the size of the per-lane arrays, so that every loop over the heads
// unrolls without a branch (the scheduler then overlaps the heads' shuffles and exponentials).
template <typename T, int D, int GP>
__global__ void __launch_bounds__(THREADS) decode_attention_kernel(DecodeAttentionArgs a) {
    constexpr int E = D / 32;  // elements of a row per lane
    constexpr int HALF = D / 2;
    // Slots whose keys and values a warp loads together, and whether the next batch's are loaded ahead:
    // as many as the registers allow (a batch's scores are BATCH·GP floats, its rows 2·BATCH·D/32 values).
    constexpr int BATCH = D * GP >= 2048 ? 2 : D * GP >= 1024 ? 4 : 8;
    constexpr bool AHEAD = sizeof(T) * D * BATCH <= 2048 && D * GP <= 1024;
    using Piece = RowPiece<T, E>;
    extern __shared__ float smem[];
    __shared__ bool last;
    const int Hkv = static_cast<int>(a.Hkv), G = static_cast<int>(a.H) / Hkv, C = static_cast<int>(a.chunk_keys);
    const int n_chunks = static_cast<int>(a.chunks);
    float* q_s = smem;                  // [G][D] the rotated queries
    float* kn_s = q_s + G * D;          // [D] the new key, rotated
    float* vn_s = kn_s + D;             // [D] the new value
    float* acc_s = vn_s + D;            // [WARPS][G][D] the warps' weighted values
    float* ml_s = acc_s + (WARPS * G * D > G * n_chunks ? WARPS * G * D : G * n_chunks);  // [WARPS][G][2]

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int bg = blockIdx.y, b = bg / Hkv, g = bg % Hkv;
    const int64_t S = a.S, c0 = static_cast<int64_t>(blockIdx.x) * C;
    const int per_warp = C / WARPS;
    const int64_t w0 = c0 + warp * per_warp;  // this warp's first slot
    // The write position and this warp's mask bytes, loaded together (neither waits for the other).
    const bool* mask = a.key_mask + b * S;
    const int64_t j_lo = w0 + lane, j_hi = w0 + 32 + lane;
    const bool in_lo = lane < per_warp && j_lo < S, in_hi = lane + 32 < per_warp && j_hi < S;
    const bool mask_lo = in_lo && mask[j_lo], mask_hi = in_hi && mask[j_hi];
    const int64_t p = *a.write_pos;
    const bool p_in = p >= 0 && p < S;
    // This warp's attended slots as bits (slot w0 + i is bit i).
    const unsigned ok_lo = __ballot_sync(0xffffffffu, mask_lo || (in_lo && j_lo == p));
    const unsigned ok_hi = __ballot_sync(0xffffffffu, mask_hi || (in_hi && j_hi == p));

    // 1. Rotation: pairs (d, d + D/2) of the G query heads and the key, as rope_kernel rounds them.
    const T* cs = static_cast<const T*>(a.cos) + b * D;
    const T* sn = static_cast<const T*>(a.sin) + b * D;
    const T* q_src = static_cast<const T*>(a.q) + b * a.q_row + g * G * D;
    const T* k_src = static_cast<const T*>(a.k) + b * a.k_row + g * D;
    const T* v_src = static_cast<const T*>(a.v) + b * a.v_row + g * D;
    constexpr int V_PER_THREAD = (D + THREADS - 1) / THREADS;
    float v_new[V_PER_THREAD];  // loaded before the rotation, stored after it
#pragma unroll
    for (int r = 0; r < V_PER_THREAD; ++r)
        v_new[r] = tid + r * THREADS < D ? to_float<T>(v_src[tid + r * THREADS]) : 0.f;
    for (int i = tid; i < (G + 1) * HALF; i += THREADS) {
        const int r = i / HALF, d = i % HALF;
        const T* src = r < G ? q_src + r * D : k_src;
        const float x1 = to_float<T>(src[d]), x2 = to_float<T>(src[d + HALF]);
        const float c1 = to_float<T>(cs[d]), c2 = to_float<T>(cs[d + HALF]);
        const float s1 = to_float<T>(sn[d]), s2 = to_float<T>(sn[d + HALF]);
        float* dst = r < G ? q_s + r * D : kn_s;
        dst[d] = rounded<T>(__fadd_rn(rounded<T>(__fmul_rn(x1, c1)), rounded<T>(__fmul_rn(-x2, s1))));
        dst[d + HALF] = rounded<T>(__fadd_rn(rounded<T>(__fmul_rn(x2, c2)), rounded<T>(__fmul_rn(x1, s2))));
    }
#pragma unroll
    for (int r = 0; r < V_PER_THREAD; ++r)
        if (tid + r * THREADS < D) vn_s[tid + r * THREADS] = v_new[r];
    __syncthreads();
    const int64_t row0 = static_cast<int64_t>(bg) * S * D;  // this (b, g)'s slot 0 in the caches
    if (p_in && p / C == blockIdx.x) {
        for (int d = tid; d < D; d += THREADS) {
            static_cast<T*>(a.k_cache)[row0 + p * D + d] = from_float<T>(kn_s[d]);
            static_cast<T*>(a.v_cache)[row0 + p * D + d] = from_float<T>(vn_s[d]);
        }
    }

    // 2. Online softmax over this warp's slots: maximum m, sum l and weighted values acc per head.
    const Piece* kc = reinterpret_cast<const Piece*>(static_cast<const T*>(a.k_cache) + row0) + lane;
    const Piece* vc = reinterpret_cast<const Piece*>(static_cast<const T*>(a.v_cache) + row0) + lane;
    float q[GP][E], m[GP], l[GP], acc[GP][E];
#pragma unroll
    for (int gi = 0; gi < GP; ++gi) {
        m[gi] = -INFINITY;
        l[gi] = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            q[gi][e] = gi < G ? q_s[gi * D + lane * E + e] : 0.f;
            acc[gi][e] = 0.f;
        }
    }
    // Batch j0's rows (a slot not attended, or the new one, is not loaded and stays 0: its score is
    // masked, or its row comes from shared memory).
    const auto slot_ok = [&](int i) { return ((i < 32 ? ok_lo >> i : ok_hi >> (i - 32)) & 1u) != 0; };
    const auto load_batch = [&](int j0, Piece (&kp)[BATCH], Piece (&vp)[BATCH]) {
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            const int64_t j = w0 + j0 + u;
            kp[u] = Piece{};
            vp[u] = Piece{};
            if (slot_ok(j0 + u) && j != p) {
                kp[u] = kc[j * 32];
                vp[u] = vc[j * 32];
            }
        }
    };
    Piece kp[BATCH], vp[BATCH];
    load_batch(0, kp, vp);
    for (int j0 = 0; j0 < per_warp; j0 += BATCH) {
        Piece kn[BATCH], vn[BATCH];  // the next batch, in flight while this one is used
        if (AHEAD && j0 + BATCH < per_warp) load_batch(j0 + BATCH, kn, vn);
        bool ok[BATCH], is_new[BATCH];
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            ok[u] = slot_ok(j0 + u);
            is_new[u] = w0 + j0 + u == p;
        }
        float sc[BATCH][GP];
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            float kf[E];
            piece_floats<T, E>(kp[u], is_new[u], kn_s, lane, kf);
#pragma unroll
            for (int gi = 0; gi < GP; ++gi) {
                sc[u][gi] = 0.f;
#pragma unroll
                for (int e = 0; e < E; ++e) sc[u][gi] = fmaf(q[gi][e], kf[e], sc[u][gi]);
            }
        }
        // The warp sums step by step over all BATCH·GP scores: independent shuffles in flight.
#pragma unroll
        for (int o = 16; o > 0; o /= 2)
#pragma unroll
            for (int u = 0; u < BATCH; ++u)
#pragma unroll
                for (int gi = 0; gi < GP; ++gi) sc[u][gi] += __shfl_xor_sync(0xffffffffu, sc[u][gi], o);
#pragma unroll
        for (int gi = 0; gi < GP; ++gi) {
            float mb = m[gi];
#pragma unroll
            for (int u = 0; u < BATCH; ++u) {
                sc[u][gi] = ok[u] ? sc[u][gi] * a.scale : -INFINITY;
                mb = fmaxf(mb, sc[u][gi]);
            }
            const float corr = exp_from(m[gi], mb);
            l[gi] *= corr;
#pragma unroll
            for (int e = 0; e < E; ++e) acc[gi][e] *= corr;
            m[gi] = mb;
#pragma unroll
            for (int u = 0; u < BATCH; ++u) {
                sc[u][gi] = exp_from(sc[u][gi], mb);
                l[gi] += sc[u][gi];
            }
        }
#pragma unroll
        for (int u = 0; u < BATCH; ++u) {
            if (!ok[u]) continue;
            float vf[E];
            piece_floats<T, E>(vp[u], is_new[u], vn_s, lane, vf);
#pragma unroll
            for (int gi = 0; gi < GP; ++gi)
#pragma unroll
                for (int e = 0; e < E; ++e) acc[gi][e] = fmaf(sc[u][gi], vf[e], acc[gi][e]);
        }
        if (j0 + BATCH < per_warp) {
            if (AHEAD) {
#pragma unroll
                for (int u = 0; u < BATCH; ++u) {
                    kp[u] = kn[u];
                    vp[u] = vn[u];
                }
            } else {
                load_batch(j0 + BATCH, kp, vp);
            }
        }
    }
#pragma unroll
    for (int gi = 0; gi < GP; ++gi) {
        if (gi >= G) break;
#pragma unroll
        for (int e = 0; e < E; ++e) acc_s[(warp * G + gi) * D + lane * E + e] = acc[gi][e];
        if (lane == 0) {
            ml_s[(warp * G + gi) * 2] = m[gi];
            ml_s[(warp * G + gi) * 2 + 1] = l[gi];
        }
    }
    __syncthreads();

    // 3. The warps added in warp order: the range's (maximum, sum, weighted values) per head, or with one
    //    range the output itself.
    const int stride = G * (D + 2);
    float* part = a.partials + (static_cast<int64_t>(bg) * n_chunks + blockIdx.x) * stride;
    T* out = static_cast<T*>(a.out) + static_cast<int64_t>(b) * a.H * D + g * G * D;
    for (int i = tid; i < G * D; i += THREADS) {
        const int gi = i / D;
        float mw[WARPS], mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) mx = fmaxf(mx, mw[w] = ml_s[(w * G + gi) * 2]);
        float lsum = 0.f, o = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) {
            const float wt = exp_from(mw[w], mx);
            lsum = fmaf(wt, ml_s[(w * G + gi) * 2 + 1], lsum);
            o = fmaf(wt, acc_s[(w * G + gi) * D + i % D], o);
        }
        if (n_chunks == 1) {
            out[i] = from_float<T>(lsum > 0.f ? o / lsum : 0.f);
        } else {
            part[2 * G + i] = o;
            if (i % D == 0) {
                part[gi] = mx;
                part[G + gi] = lsum;
            }
        }
    }
    if (n_chunks == 1) return;
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        last = atomicAdd(a.counters + bg, 1) == n_chunks - 1;
        if (last) a.counters[bg] = 0;  // for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    // The ranges' weights exp(m_c − m) / l per head (a warp per head), then each output element as the
    // weighted sum of the ranges' partials, in range order, with loads of several ranges in flight.
    const float* parts = a.partials + static_cast<int64_t>(bg) * n_chunks * stride;
    float* w_s = acc_s;  // [G][n_chunks]; acc_s is read no more
    for (int gi = warp; gi < G; gi += WARPS) {
        float mx = -INFINITY;
        for (int c = lane; c < n_chunks; c += 32) mx = fmaxf(mx, __ldcg(parts + c * stride + gi));
        mx = warp_max(mx);
        float lsum = 0.f;
        for (int c = lane; c < n_chunks; c += 32) {
            const float w = exp_from(__ldcg(parts + c * stride + gi), mx);
            w_s[gi * n_chunks + c] = w;
            lsum = fmaf(w, __ldcg(parts + c * stride + G + gi), lsum);
        }
        lsum = warp_sum(lsum);
        const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
        for (int c = lane; c < n_chunks; c += 32) w_s[gi * n_chunks + c] *= inv;
    }
    __syncthreads();
    for (int i = tid; i < G * D; i += THREADS) {
        const float* w = w_s + (i / D) * n_chunks;
        const float* pi = parts + 2 * G + i;
        float o = 0.f;
#pragma unroll 8
        for (int c = 0; c < n_chunks; ++c) o = fmaf(w[c], __ldcg(pi + c * stride), o);
        out[i] = from_float<T>(o);
    }
}

template <typename T, int D>
void launch_for_head(const DecodeAttentionArgs& a, dim3 grid, size_t smem, cudaStream_t st) {
    const int64_t G = a.H / a.Hkv;
    if (G == 1) decode_attention_kernel<T, D, 1><<<grid, THREADS, smem, st>>>(a);
    else if (G == 2) decode_attention_kernel<T, D, 2><<<grid, THREADS, smem, st>>>(a);
    else if (G <= 4) decode_attention_kernel<T, D, 4><<<grid, THREADS, smem, st>>>(a);
    else decode_attention_kernel<T, D, 8><<<grid, THREADS, smem, st>>>(a);
}

template <typename T>
int launch_for_type(const DecodeAttentionArgs& a, dim3 grid, size_t smem, cudaStream_t st) {
    switch (a.D) {
        case 64: launch_for_head<T, 64>(a, grid, smem, st); break;
        case 128: launch_for_head<T, 128>(a, grid, smem, st); break;
        case 256: launch_for_head<T, 256>(a, grid, smem, st); break;
        default: return static_cast<int>(cudaErrorInvalidValue);
    }
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

bool decode_attention_cuda_supports(int64_t H, int64_t Hkv, int64_t D) {
    return Hkv > 0 && H % Hkv == 0 && H / Hkv <= MAX_GROUP && (D == 64 || D == 128 || D == 256);
}

void decode_attention_cuda_plan(DecodeAttentionArgs& a, int sm_count, int64_t chunk_keys) {
    if (chunk_keys > 0) {
        a.chunk_keys = std::min<int64_t>(MAX_CHUNK, std::max<int64_t>(MIN_CHUNK, (chunk_keys + 31) / 32 * 32));
    } else {
        // About one block per SM, and at least 64 slots a range: adding ranges costs a few dependent
        // memory round trips, about what two more batches a warp cost.
        const int64_t pairs = std::max<int64_t>(1, a.B * a.Hkv);
        const int64_t ranges = std::max<int64_t>(1, (static_cast<int64_t>(sm_count) + pairs - 1) / pairs);
        const int64_t keys = (a.S + ranges - 1) / ranges;
        a.chunk_keys = std::min<int64_t>(MAX_CHUNK, std::max<int64_t>(64, (keys + 31) / 32 * 32));
    }
    a.chunks = (a.S + a.chunk_keys - 1) / a.chunk_keys;
}

bool decode_attention_cuda_fits(const DecodeAttentionArgs& a) {
    return static_cast<int64_t>(sizeof(float)) * scratch_floats(a.H / a.Hkv, a.D, a.chunks) <= MAX_SCRATCH_BYTES;
}

int64_t decode_attention_cuda_partials(const DecodeAttentionArgs& a) {
    return a.B * a.Hkv * a.chunks * (a.H / a.Hkv) * (a.D + 2);
}

int decode_attention_cuda_launch(const DecodeAttentionArgs& a, void* stream) {
    if (a.B == 0 || a.S == 0) return 0;
    const int64_t G = a.H / a.Hkv;
    const size_t smem = sizeof(float) * static_cast<size_t>(scratch_floats(G, a.D, a.chunks));
    if (static_cast<int64_t>(smem) > MAX_SCRATCH_BYTES) return static_cast<int>(cudaErrorInvalidValue);
    const dim3 grid(static_cast<unsigned>(a.chunks), static_cast<unsigned>(a.B * a.Hkv));
    const auto st = static_cast<cudaStream_t>(stream);
    switch (a.t) {
        case GemvType::BF16: return launch_for_type<__nv_bfloat16>(a, grid, smem, st);
        case GemvType::F16: return launch_for_type<__half>(a, grid, smem, st);
        default: return launch_for_type<float>(a, grid, smem, st);
    }
}

}  // namespace lota::kernels
