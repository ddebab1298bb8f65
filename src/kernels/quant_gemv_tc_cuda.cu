// Tensor-core path of the decode-sized quantized product y = x·Wᵀ (see quant_gemv.h), for bf16
// or f16 x, 2- or 4-bit codes and contiguous groups — the case of every decode step of a GPTQ
// model without act-order. The SIMT kernel (quant_gemv_cuda.cu) spends three to four instructions
// per code and row of x; here a warp turns two codes into an exact 16-bit pair with one shift and
// one LOP3 and lets mma.m16n8k16 multiply them with up to 16 rows of x, so the cost per code no
// longer grows with the rows. At one row such a kernel is bound by instruction issue, not by memory
// (Nsight Compute), so everything per code and per group is kept to the fewest instructions.
//
// Two kernels share that work, measured on an H100 (bench/gemv.md): with up to tc_a_max_rows rows of
// x the codes are mma's A operand (quant_gemv_tc_a_kernel: half the mmas of the other orientation,
// fewer registers, the fewest instructions per code); with more rows they are the B operand and x
// is A (quant_gemv_tc_kernel: 16 rows of x in one mma).
//
// Layout of quant_gemv_tc_a_kernel (why no shuffles are needed): a sum over k may visit k in any
// order as long as x and W agree. Lane (g = lane/4, t = lane%4) of a warp loads one 16-byte row
// piece of qweight: word row w0 + t, columns n0 + 4g .. n0 + 4g + 3. The codes are mma's A operand
// (rows = output columns): column n0 + 4g + 2T + r is row g + 8r of m-tile T, and a word's codes p
// and p + C/2 (C codes per word; they sit exactly 16 bits apart) form one pair of A's k slots
// {2t, 2t+1} or {2t+8, 2t+9}. x is the B operand (columns = rows of x): the lane holds x row g at
// its own word's rows, paired the same way with one byte permute each. Each code enters as
// 1 + q/2^BITS (the code under the top of 1.0's mantissa: no subtraction), and one more mma with
// A = 1 gives Σx per row, so per group
//     Σ x·S(Q − Z + F) = S·(2^BITS·Σ x·(1 + Q/2^BITS) − (2^BITS + Z − F)·Σx),
// summed over a group's steps in the mma's float32 registers and scaled once per group by the
// lane that holds the sums: lane (g, t) ends with columns n0 + 4g .. + 3 at rows 2t, 2t + 1.
//
// Layout of quant_gemv_tc_kernel: the same lane loads; column n0 + 4g + c is logical column g of
// n-tile c (B's column `groupID`), a word's pairs are B's k slots, and the A fragment holds x at k slots
// {2t, 2t+1, 2t+8, 2t+9} of the lane's own word rows; each code pair is made exact by subtracting the
// magic number under whose mantissa the LOP3 put it (128.0 or 1024.0), and a fifth mma with B = 1
// gives Σx per row. The output slot (row g, column 2t/2t+1 of n-tile c) is column n0 + 8t + c (+4).
//
// Work split (both): a block of 4 warps owns 32 columns and a K range; each warp takes a contiguous
// quarter of it (a group's steps stay together) and issues the loads of U steps at once before
// multiplying them. The four sums are added in warp order in shared memory; with several K
// ranges each block stores its float32 partial and the last block of a column tile to finish
// adds the ranges in order, adds the bias and rounds once (deterministic, no second kernel).
//
// Launch (compute capability 9.0): a programmatic dependent launch, so that the blocks start while the
// previous kernel (RMSNorm, SwiGLU: they let dependents start early) still runs; each warp asks L2 for
// its first codes, waits for that kernel (x is its output), then runs as above. The partial sums and
// tile counters are touched only after the wait.
//
// Measured on an H100 (bench/gemv.md, bench/decode.md); quant_gemv_cuda_plan uses them from 1 row on.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <type_traits>
#include <utility>

#include "kernels/quant_gemv_cuda.h"
#include "kernels/quant_gemv_io.cuh"

namespace lota::kernels {
namespace {

constexpr int TC_WARPS = 4;    // warps per block, each on its own contiguous rows of the range
constexpr int TC_COLS = 32;    // output columns per block (8 lanes × 4 columns per 16-byte load)

// 16-bit type traits: mantissa bits, the magic number whose mantissa holds a code exactly (128.0
// for bf16's 7 bits, 1024.0 for f16's 10), and 1.0, both as a pair.
template <bool BF16>
struct Half16 {
    static constexpr int mantissa = BF16 ? 7 : 10;
    static constexpr uint32_t magic = BF16 ? 0x43004300u : 0x64006400u;
    static constexpr uint32_t one = BF16 ? 0x3F803F80u : 0x3C003C00u;
};

// The pair {code p, code p + C/2} of a BITS-bit word as exact 16-bit numbers: OR the codes into
// the magic number's mantissa, then subtract the magic number (exact: both are integers of the
// same binade).
// `mask` and `magic` come in registers so that the AND and the OR are one LOP3 (which takes one
// immediate; with both constants ptxas emits two).
template <int BITS, int P, bool BF16>
__device__ __forceinline__ uint32_t code_pair(uint32_t w, uint32_t mask, uint32_t magic) {
    uint32_t v;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(v) : "r"(w >> (BITS * P)), "r"(mask), "r"(magic));  // (a & b) | c
    uint32_t r;
    if constexpr (BF16)  // v·1 − 128 (bf16x2 has FMA from sm_80, subtraction only from sm_90)
        asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(0x3F803F80u), "r"(0xC300C300u));
    else
        asm("sub.f16x2 %0, %1, %2;" : "=r"(r) : "r"(v), "r"(0x64006400u));
    return r;
}

// The pair {code p, code p + C/2} of a BITS-bit word as the exact 16-bit numbers 1 + q/2^BITS: one
// shift puts both codes under the top of the mantissa, one LOP3 masks them and ORs in 1.0. (A code
// at the bottom of the mantissa of 128.0 would skip the shift for p = 0 but makes the constant part
// 2^7/q times the code's instead of 2^BITS/q, and the group's Σx correction cancels more.)
// `mask` and `one` come in registers so that the AND and the OR are one LOP3 (which takes one
// immediate; with both constants ptxas emits two).
template <int BITS, int P, bool BF16>
__device__ __forceinline__ uint32_t unit_pair(uint32_t w, uint32_t mask, uint32_t one) {
    constexpr int shift = BITS * P - (Half16<BF16>::mantissa - BITS);  // code p to the mantissa's top bits
    const uint32_t moved = shift >= 0 ? w >> (shift >= 0 ? shift : 0) : w << (shift < 0 ? -shift : 0);
    uint32_t v;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(v) : "r"(moved), "r"(mask), "r"(one));  // (a & b) | c
    return v;
}

// Calls f(std::integral_constant<int, J>) for J = 0 .. n-1 (a compile-time loop).
template <typename F, int... J>
__device__ __forceinline__ void for_each_index(F&& f, std::integer_sequence<int, J...>) {
    (f(std::integral_constant<int, J>{}), ...);
}

template <bool BF16>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (BF16)
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();  // quant_gemv_tc_eligible refuses devices without mma (compute capability < 8.0)
#endif
}

// x at one word's C rows, as C/2 pairs of neighbours (zeros for rows of x past M).
template <int C>
struct XRows {
    uint32_t v[C / 2];
};

template <int C>
__device__ __forceinline__ XRows<C> load_x(const uint16_t* __restrict__ x, bool valid) {
    XRows<C> r;
    if (!valid) {
#pragma unroll
        for (int i = 0; i < C / 2; ++i) r.v[i] = 0;
        return r;
    }
#pragma unroll
    for (int i = 0; i < C / 8; ++i) {
        const uint4 q = __ldg(reinterpret_cast<const uint4*>(x) + i);
        r.v[4 * i] = q.x; r.v[4 * i + 1] = q.y; r.v[4 * i + 2] = q.z; r.v[4 * i + 3] = q.w;
    }
    return r;
}

// The pair {x[p], x[p + C/2]} in the order code_pair builds W's pair.
template <int C, int P>
__device__ __forceinline__ uint32_t x_pair(const XRows<C>& r) {
    return __byte_perm(r.v[P / 2], r.v[P / 2 + C / 4], (P & 1) ? 0x7632 : 0x5410);
}

// x through shared memory (GemvArgs::tc_x_smem): a lane copies its own C values of x for a step into its
// slot with cp.async, which holds no registers while they travel (zeros when `valid` is false; nothing is
// read then), waits for all its copies, and reads each slot back at its step. Only the lane that wrote a
// slot reads it, so no barrier is needed.
template <int C>
__device__ __forceinline__ void copy_x_async(uint4* slot, const uint16_t* __restrict__ x, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(slot));
    const int bytes = valid ? 16 : 0;
#pragma unroll
    for (int i = 0; i < C / 8; ++i)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(dst + 16 * i), "l"(x + 8 * i), "r"(bytes)
                     : "memory");
#endif
}

__device__ __forceinline__ void wait_x_copies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

template <int C>
__device__ __forceinline__ XRows<C> read_x(const uint4* slot) {
    XRows<C> r;
#pragma unroll
    for (int i = 0; i < C / 8; ++i) {
        const uint4 q = slot[i];
        r.v[4 * i] = q.x; r.v[4 * i + 1] = q.y; r.v[4 * i + 2] = q.z; r.v[4 * i + 3] = q.w;
    }
    return r;
}

// The end of both kernels, once every warp's sums are in red[warp][row][column]: the block's sum over
// its K range, added in warp order. One K range: rounded and stored. Several: stored as this range's
// partial; the last block of the column tile to finish adds all ranges in range order (deterministic
// whichever block is last), adds the bias, rounds once and resets the tile's counter for the next call.
__device__ __forceinline__ void finish_block(const GemvArgs& a, const float (&red)[TC_WARPS][16][TC_COLS + 1],
                                             int* tile_counters, int64_t n0) {
    __shared__ bool last_block;
    const int64_t N = a.N, M = a.M;
    const auto block_sum = [&](int m, int col) {
        float v = red[0][m][col];
#pragma unroll
        for (int wi = 1; wi < TC_WARPS; ++wi) v += red[wi][m][col];
        return v;
    };
    const auto finish = [&](int64_t m, int64_t n, float v) {
        if (a.bias) v += load_as_float(a.bias, a.out_type, n);
        store_as(a.out, a.out_type, m * N + n, v);
    };
    if (a.splits == 1) {
        for (int i = threadIdx.x; i < M * TC_COLS; i += TC_WARPS * 32)
            finish(i / TC_COLS, n0 + i % TC_COLS, block_sum(i / TC_COLS, i % TC_COLS));
        return;
    }
    for (int i = threadIdx.x; i < M * TC_COLS; i += TC_WARPS * 32)
        a.partial[(static_cast<int64_t>(blockIdx.y) * M + i / TC_COLS) * N + n0 + i % TC_COLS] =
            block_sum(i / TC_COLS, i % TC_COLS);
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(&tile_counters[blockIdx.x], 1) == a.splits - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    for (int i = threadIdx.x; i < M * TC_COLS; i += TC_WARPS * 32) {
        const int64_t m = i / TC_COLS, n = n0 + i % TC_COLS;
        float v = 0.0f;
        for (int64_t sp = 0; sp < a.splits; ++sp) v += __ldcg(a.partial + (sp * M + m) * N + n);
        finish(m, n, v);
    }
    if (threadIdx.x == 0) tile_counters[blockIdx.x] = 0;
}

// A group's scales, zeros and LoTA offsets for this lane's 8 output columns, loaded when the
// group starts so that they arrive while its codes are multiplied.
struct GroupMeta {
    uint4 s;       // 8 fp16 scales
    int4 z0, z1;   // 8 zero points
    float4 f0, f1; // 8 offsets (zeros without offsets)
};

__device__ __forceinline__ GroupMeta load_meta(const GemvArgs& a, int64_t gn, bool valid) {
    GroupMeta m{};
    if (!valid) return m;
    m.s = __ldg(reinterpret_cast<const uint4*>(a.scales + gn));
    m.z0 = __ldg(reinterpret_cast<const int4*>(a.zeros + gn));
    m.z1 = __ldg(reinterpret_cast<const int4*>(a.zeros + gn + 4));
    if (a.offset) {
        m.f0 = __ldg(reinterpret_cast<const float4*>(a.offset + gn));
        m.f1 = __ldg(reinterpret_cast<const float4*>(a.offset + gn + 4));
    }
    return m;
}

// A group's scales, zeros and LoTA offsets for this lane's 4 output columns, loaded when the
// group starts so that they arrive while its codes are multiplied.
struct GroupMeta4 {
    uint2 s;   // 4 fp16 scales
    int4 z;    // 4 zero points
    float4 f;  // 4 offsets (zeros without offsets)
};

__device__ __forceinline__ GroupMeta4 load_meta4(const GemvArgs& a, int64_t gn) {
    GroupMeta4 m{};
    m.s = __ldg(reinterpret_cast<const uint2*>(a.scales + gn));
    m.z = __ldg(reinterpret_cast<const int4*>(a.zeros + gn));
    if (a.offset) m.f = __ldg(reinterpret_cast<const float4*>(a.offset + gn));
    return m;
}

// Before waiting for the previous kernel (x is its output): asks L2 for the codes of the warp's first
// 8 steps (lane g: step g, word row t; one 128-byte line each), which no kernel writes.
template <int STEP, int C>
__device__ __forceinline__ void prefetch_codes_then_wait(const int32_t* wline, int64_t N, int64_t k_begin,
                                                         int64_t k_end, int g) {
    const int64_t k = k_begin + static_cast<int64_t>(g) * STEP;
    if (k < k_end) asm volatile("prefetch.global.L2 [%0];" ::"l"(wline + (k / C) * N));
    wait_for_previous_kernel();
}

// BITS: 2 or 4. BIG: more than 8 rows of x (the A fragment's rows g + 8 are used). U: steps whose
// loads a warp issues together before multiplying them.
template <int BITS, bool BF16, bool BIG, int U>
__global__ void __launch_bounds__(TC_WARPS * 32) quant_gemv_tc_kernel(GemvArgs a, int* tile_counters) {
    constexpr int C = 32 / BITS;  // codes per word
    constexpr int STEP = 4 * C;   // rows per warp step (4 word rows)
    __shared__ float red[TC_WARPS][16][TC_COLS + 1];  // + 1: the 32 lanes' stores hit 32 banks
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int64_t N = a.N, K = a.K, M = a.M;
    const int64_t n0 = static_cast<int64_t>(blockIdx.x) * TC_COLS;
    const int64_t warp_rows = a.split_rows / TC_WARPS;
    const int64_t split_end = (static_cast<int64_t>(blockIdx.y) + 1) * a.split_rows;
    const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * a.split_rows + warp * warp_rows;
    int64_t k_end = k_begin + warp_rows;
    if (k_end > split_end) k_end = split_end;
    if (k_end > K) k_end = K;
    const bool row_lo = g < M, row_hi = BIG && g + 8 < M;
    const uint16_t* x_lo = static_cast<const uint16_t*>(a.x) + (row_lo ? g : 0) * K + t * C;
    const uint16_t* x_hi = static_cast<const uint16_t*>(a.x) + (row_hi ? g + 8 : 0) * K + t * C;
    const int32_t* wbase = a.qweight + t * N + n0 + 4 * g;  // + (k / C) * N per step

    float acc[2][8];
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r][j] = 0.0f;
    float dot[4][4], xsum[4];  // the current group's mma sums: Σx·Q per n-tile, Σx
    const auto clear_group = [&] {
#pragma unroll
        for (int c = 0; c < 4; ++c)
#pragma unroll
            for (int i = 0; i < 4; ++i) dot[c][i] = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; ++i) xsum[i] = 0.0f;
    };
    clear_group();

    // Adds the finished group's dot products, scaled, to acc and clears them.
    const auto flush = [&](const GroupMeta& meta) {
        if (row_lo) {
            float zf[8] = {float(meta.z0.x) - meta.f0.x, float(meta.z0.y) - meta.f0.y,
                           float(meta.z0.z) - meta.f0.z, float(meta.z0.w) - meta.f0.w,
                           float(meta.z1.x) - meta.f1.x, float(meta.z1.y) - meta.f1.y,
                           float(meta.z1.z) - meta.f1.z, float(meta.z1.w) - meta.f1.w};
            const __half* sh = reinterpret_cast<const __half*>(&meta.s);
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                // Output slots (row, 2t) and (row, 2t+1) of n-tile c are columns 8t + c and 8t + 4 + c.
                const float s0 = __half2float(sh[c]), s1 = __half2float(sh[4 + c]);
                acc[0][c] += s0 * (dot[c][0] - zf[c] * xsum[0]);
                acc[0][4 + c] += s1 * (dot[c][1] - zf[4 + c] * xsum[1]);
                if (row_hi) {
                    acc[1][c] += s0 * (dot[c][2] - zf[c] * xsum[2]);
                    acc[1][4 + c] += s1 * (dot[c][3] - zf[4 + c] * xsum[3]);
                }
            }
        }
        clear_group();
    };

    prefetch_codes_then_wait<STEP, C>(a.qweight + t * N + n0, N, k_begin, k_end, g);
    if (k_begin < k_end) {
        const uint32_t pair_mask = ((1u << BITS) - 1u) * 0x00010001u, magic = Half16<BF16>::magic;
        int64_t gi = k_begin / a.group_rows;
        int64_t group_end = (gi + 1) * a.group_rows;
        GroupMeta meta = load_meta(a, gi * N + n0 + 8 * t, row_lo);
        for (int64_t kb = k_begin; kb < k_end; kb += U * STEP) {
            // Issue the loads of U steps at once (the warp's bytes in flight), then multiply.
            int4 w[U];
            XRows<C> xl[U], xh[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int64_t k = kb + u * STEP;
                const bool in = k < k_end;
                w[u] = in ? __ldg(reinterpret_cast<const int4*>(wbase + (k / C) * N)) : make_int4(0, 0, 0, 0);
                xl[u] = load_x<C>(x_lo + k, in && row_lo);
                xh[u] = load_x<C>(x_hi + k, in && row_hi);
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int64_t k = kb + u * STEP;
                if (k >= k_end) break;  // the same for the whole warp
                if (k >= group_end) {
                    flush(meta);
                    gi = k / a.group_rows;
                    group_end = (gi + 1) * a.group_rows;
                    meta = load_meta(a, gi * N + n0 + 8 * t, row_lo);
                }
                const uint32_t words[4] = {static_cast<uint32_t>(w[u].x), static_cast<uint32_t>(w[u].y),
                                           static_cast<uint32_t>(w[u].z), static_cast<uint32_t>(w[u].w)};
                // mma j takes the word's pairs 2j (k slots 2t, 2t+1) and 2j + 1 (k slots 2t+8, 2t+9).
                for_each_index(
                    [&](auto jc) {
                        constexpr int P0 = 2 * decltype(jc)::value, P1 = P0 + 1;
                        const uint32_t afrag[4] = {x_pair<C, P0>(xl[u]), x_pair<C, P0>(xh[u]),
                                                   x_pair<C, P1>(xl[u]), x_pair<C, P1>(xh[u])};
#pragma unroll
                        for (int c = 0; c < 4; ++c)
                            mma16816<BF16>(dot[c], afrag, code_pair<BITS, P0, BF16>(words[c], pair_mask, magic),
                                           code_pair<BITS, P1, BF16>(words[c], pair_mask, magic));
                        mma16816<BF16>(xsum, afrag, Half16<BF16>::one, Half16<BF16>::one);
                    },
                    std::make_integer_sequence<int, C / 4>{});
            }
        }
        flush(meta);
    }

    // The warps' sums, added in warp order: the block's sum over its K range.
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        red[warp][g][8 * t + j] = acc[0][j];
        red[warp][g + 8][8 * t + j] = acc[1][j];
    }
    __syncthreads();
    finish_block(a, red, tile_counters, n0);
}

// Codes as A (see the top): up to 8 rows of x. BITS: 2 or 4. U: steps whose code loads a warp
// issues together before multiplying them. XS: x of those steps copied through shared memory
// (copy_x_async) instead of loaded into registers. The kernels are below.
template <int BITS, bool BF16, int U, bool XS>
__device__ __forceinline__ void quant_gemv_tc_a(const GemvArgs& a, int* tile_counters) {
    constexpr int C = 32 / BITS;  // codes per word
    constexpr int STEP = 4 * C;   // rows per warp step (4 word rows)
    constexpr float UNIT = float(1 << BITS);
    __shared__ float red[TC_WARPS][16][TC_COLS + 1];  // + 1: fewer bank conflicts
    __shared__ uint4 x_slots[XS ? TC_WARPS : 1][XS ? U : 1][32][C / 8];  // XS: each lane's x of a batch
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int64_t N = a.N, K = a.K;
    const int64_t n0 = static_cast<int64_t>(blockIdx.x) * TC_COLS;
    const int64_t warp_rows = a.split_rows / TC_WARPS;
    const int64_t split_end = (static_cast<int64_t>(blockIdx.y) + 1) * a.split_rows;
    const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * a.split_rows + warp * warp_rows;
    int64_t k_end = k_begin + warp_rows;
    if (k_end > split_end) k_end = split_end;
    if (k_end > K) k_end = K;
    const bool x_in = g < a.M;  // this lane's B column: row g of x, at its own word rows
    const uint16_t* x_row = static_cast<const uint16_t*>(a.x) + (x_in ? g : 0) * K + t * C;
    const int32_t* wbase = a.qweight + t * N + n0 + 4 * g;  // + (k / C) * N per step

    float acc[4][2] = {};  // column n0 + 4g + j, row 2t + i
    // The current group's mma sums: Σ x·(1 + q/2^BITS) per m-tile T (slot: column 2T + slot/2, row
    // 2t + slot%2) and Σx (slots 0, 1: rows 2t, 2t + 1).
    float dot[2][4], xsum[4];
    const auto clear_group = [&] {
#pragma unroll
        for (int i = 0; i < 4; ++i) dot[0][i] = dot[1][i] = xsum[i] = 0.0f;
    };
    clear_group();

    // Adds the finished group's sums, scaled, to acc and clears them.
    const auto flush = [&](const GroupMeta4& meta) {
        const __half* sh = reinterpret_cast<const __half*>(&meta.s);
        const float s[4] = {__half2float(sh[0]), __half2float(sh[1]), __half2float(sh[2]), __half2float(sh[3])};
        const float zf[4] = {UNIT + float(meta.z.x) - meta.f.x, UNIT + float(meta.z.y) - meta.f.y,
                             UNIT + float(meta.z.z) - meta.f.z, UNIT + float(meta.z.w) - meta.f.w};
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int i = 0; i < 2; ++i) acc[j][i] += s[j] * (UNIT * dot[j / 2][2 * (j % 2) + i] - zf[j] * xsum[i]);
        clear_group();
    };

    prefetch_codes_then_wait<STEP, C>(a.qweight + t * N + n0, N, k_begin, k_end, g);
    if (k_begin < k_end) {
        const uint32_t mask = ((1u << BITS) - 1u) * 0x00010001u << (Half16<BF16>::mantissa - BITS);
        const uint32_t one = Half16<BF16>::one;
        const uint32_t ones[4] = {one, one, one, one};
        // A step never straddles groups (group_rows is a multiple of STEP: quant_gemv_tc_eligible), so
        // the next group starts exactly where the current one ends and its meta is N entries on.
        int64_t group_end = (k_begin / a.group_rows + 1) * a.group_rows;
        int64_t meta_at = (k_begin / a.group_rows) * N + n0 + 4 * g;
        GroupMeta4 meta = load_meta4(a, meta_at);
        for (int64_t kb = k_begin; kb < k_end; kb += U * STEP) {
            // Issue the loads of U steps, codes and x, at once (the warp's bytes in flight), then multiply.
            // x comes from L1 or L2, but loaded at its step each step waited for it in turn: in a decode
            // step this kernel is a chain of such waits more than a stream of bytes. Loading it with the
            // codes costs registers (5 resident blocks an SM instead of 7 at 4 bits, U 4) and was faster
            // in whole decode steps (bench/decode.md); copied through shared memory (XS) it costs none.
            int4 w[U];
            XRows<C> xs[XS ? 1 : U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int64_t k = kb + u * STEP;
                w[u] = k < k_end ? __ldg(reinterpret_cast<const int4*>(wbase + (k / C) * N)) : make_int4(0, 0, 0, 0);
                const bool valid = x_in && k < k_end;
                if constexpr (XS)
                    copy_x_async<C>(x_slots[warp][u][lane], valid ? x_row + k : x_row, valid);
                else
                    xs[u] = load_x<C>(x_row + k, valid);
            }
            if constexpr (XS) wait_x_copies();
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int64_t k = kb + u * STEP;
                if (k >= k_end) break;  // the same for the whole warp
                if (k == group_end) {
                    flush(meta);
                    group_end += a.group_rows;
                    meta_at += N;
                    meta = load_meta4(a, meta_at);
                }
                const XRows<C> xr = XS ? read_x<C>(x_slots[warp][u][lane]) : xs[XS ? 0 : u];
                const uint32_t words[4] = {static_cast<uint32_t>(w[u].x), static_cast<uint32_t>(w[u].y),
                                           static_cast<uint32_t>(w[u].z), static_cast<uint32_t>(w[u].w)};
                // k-quarter h takes the words' pairs 2h (k slots 2t, 2t+1) and 2h + 1 (slots 2t+8, 2t+9).
                for_each_index(
                    [&](auto hc) {
                        constexpr int P0 = 2 * decltype(hc)::value, P1 = P0 + 1;
                        const uint32_t b0 = x_pair<C, P0>(xr), b1 = x_pair<C, P1>(xr);
#pragma unroll
                        for (int T = 0; T < 2; ++T) {
                            const uint32_t afrag[4] = {unit_pair<BITS, P0, BF16>(words[2 * T], mask, one),
                                                       unit_pair<BITS, P0, BF16>(words[2 * T + 1], mask, one),
                                                       unit_pair<BITS, P1, BF16>(words[2 * T], mask, one),
                                                       unit_pair<BITS, P1, BF16>(words[2 * T + 1], mask, one)};
                            mma16816<BF16>(dot[T], afrag, b0, b1);
                        }
                        mma16816<BF16>(xsum, ones, b0, b1);
                    },
                    std::make_integer_sequence<int, C / 4>{});
            }
        }
        flush(meta);
    }

    // The warps' sums, added in warp order: the block's sum over its K range.
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int i = 0; i < 2; ++i) red[warp][2 * t + i][4 * g + j] = acc[j][i];
    __syncthreads();
    finish_block(a, red, tile_counters, n0);
}

// x in registers: 96 registers at 4 bits and batch 4 (5 blocks an SM), as ptxas chooses.
template <int BITS, bool BF16, int U>
__global__ void __launch_bounds__(TC_WARPS * 32) quant_gemv_tc_a_kernel(GemvArgs a, int* tile_counters) {
    quant_gemv_tc_a<BITS, BF16, U, false>(a, tile_counters);
}

// x through shared memory: 74 registers at 4 bits and batch 4 as ptxas chooses, held to 72 (7 blocks an SM;
// it then keeps one 4-byte value in local memory) while a batch is at most 32 word rows (4 bits: batch 4).
template <int BITS, bool BF16, int U>
__global__ void __launch_bounds__(TC_WARPS * 32, U * 32 / BITS <= 32 ? 7 : 1)
    quant_gemv_tc_a_xs_kernel(GemvArgs a, int* tile_counters) {
    quant_gemv_tc_a<BITS, BF16, U, true>(a, tile_counters);
}

using TcKernel = void (*)(GemvArgs, int*);

// KIND 0: codes as A (up to 8 rows); 1: codes as B, up to 8 rows; 2: codes as B, up to 16 rows; 3: codes
// as A, x through shared memory.
template <int BITS, bool BF16, int KIND, int U>
TcKernel kernel_of() {
    if constexpr (KIND == 0) return quant_gemv_tc_a_kernel<BITS, BF16, U>;
    else if constexpr (KIND == 3) return quant_gemv_tc_a_xs_kernel<BITS, BF16, U>;
    else return quant_gemv_tc_kernel<BITS, BF16, KIND == 2, U>;
}

template <int BITS, bool BF16, int KIND>
TcKernel kernel_with_batch(int batch) {
    if (batch == 2) return kernel_of<BITS, BF16, KIND, 2>();
    if (batch == 8) return kernel_of<BITS, BF16, KIND, 8>();
    return kernel_of<BITS, BF16, KIND, 4>();
}

template <int BITS, bool BF16>
TcKernel kernel_with_kind(int kind, int batch) {
    if (kind == 0) return kernel_with_batch<BITS, BF16, 0>(batch);
    if (kind == 1) return kernel_with_batch<BITS, BF16, 1>(batch);
    if (kind == 2) return kernel_with_batch<BITS, BF16, 2>(batch);
    return kernel_with_batch<BITS, BF16, 3>(batch);
}

// The instance for these arguments (bits, x's type, kernel and rows, a.tc_x_smem, a.tc_batch) and its index
// in 0 .. kInstances - 1 (for instance_info).
constexpr int kInstances = 2 * 2 * 4 * 3;
TcKernel tc_kernel(const GemvArgs& a, int* index) {
    const bool bf16 = a.x_type == GemvType::BF16;
    const int kind = a.tc_codes_a && a.M <= 8 ? (a.tc_x_smem ? 3 : 0) : a.M > 8 ? 2 : 1;
    const int batch = a.tc_batch == 2 || a.tc_batch == 8 ? a.tc_batch : 4;
    *index = (((a.bits == 4) * 2 + bf16) * 4 + kind) * 3 + (batch == 2 ? 0 : batch == 4 ? 1 : 2);
    if (a.bits == 2) return bf16 ? kernel_with_kind<2, true>(kind, batch) : kernel_with_kind<2, false>(kind, batch);
    return bf16 ? kernel_with_kind<4, true>(kind, batch) : kernel_with_kind<4, false>(kind, batch);
}

// What the launches need to know of an instance, asked of the runtime once per instance: its blocks
// resident per SM (registers and shared memory allowing; 0 if the query failed), and whether it was
// compiled with wait_for_previous_kernel (PTX of compute capability 9.0 or later: one built for an
// older one and JIT-compiled would not wait, so it must not be launched to start early).
struct InstanceInfo {
    int resident_blocks = 0;
    bool compiled_to_wait = false;
};

const InstanceInfo& instance_info(const GemvArgs& a) {
    static std::once_flag asked[kInstances];
    static InstanceInfo info[kInstances];
    int index = 0;
    const TcKernel k = tc_kernel(a, &index);
    std::call_once(asked[index], [&] {
        int blocks = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, k, TC_WARPS * 32, 0) == cudaSuccess && blocks > 0)
            info[index].resident_blocks = blocks;
        cudaFuncAttributes attr{};
        info[index].compiled_to_wait =
            cudaFuncGetAttributes(&attr, k) == cudaSuccess && attr.ptxVersion >= 90 && attr.binaryVersion >= 90;
    });
    return info[index];
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int device_major() {
    static const int major = current_device_attribute(cudaDevAttrComputeCapabilityMajor, 0);
    return major;
}

}  // namespace

bool quant_gemv_tc_eligible(const GemvArgs& a) {
    if (a.bits != 2 && a.bits != 4) return false;
    if (a.x_type != GemvType::BF16 && a.x_type != GemvType::F16) return false;
    const int64_t step = 4 * (32 / a.bits);
    return a.M >= 1 && a.M <= 16 && a.group_rows > 0 && a.group_rows % step == 0 && a.K % step == 0 &&
           a.N % TC_COLS == 0 && a.N / TC_COLS <= QUANT_GEMV_MAX_TILES && aligned16(a.qweight) && aligned16(a.scales) &&
           aligned16(a.zeros) && (a.offset == nullptr || aligned16(a.offset)) && aligned16(a.x) &&
           device_major() >= 8 && quant_gemv_tile_counters() != nullptr && instance_info(a).resident_blocks > 0;
}

int64_t quant_gemv_tc_splits(const GemvArgs& a, const GemvTuning& tuning, int sm_count, int64_t* split_rows) {
    const int64_t step = 4 * (32 / a.bits);
    const int64_t steps = a.K / step, tiles = a.N / TC_COLS;
    const auto ranges_of = [&](int64_t per_warp) { return (steps + TC_WARPS * per_warp - 1) / (TC_WARPS * per_warp); };
    int64_t per_warp = 0;
    // Default: whole waves at a fixed cost of 4 steps (measured, bench/gemv.md); tc_waves alone asks for the
    // one-wave rule.
    const double block_steps = tuning.tc_block_steps != 0 ? tuning.tc_block_steps : tuning.tc_waves > 0 ? -1.0 : 4.0;
    if (block_steps > 0) {
        // Whole waves: a block takes about its steps per warp plus a fixed cost (its launch, first loads
        // and the reduction), and a wave of blocks that does not fill every resident slot takes as long as
        // a full one. The fewest K ranges with the least waves × (steps per warp + fixed cost).
        const int64_t slots = static_cast<int64_t>(instance_info(a).resident_blocks) * sm_count;
        const int64_t max_splits = std::max<int64_t>(1, steps / (2 * TC_WARPS));  // every warp keeps 2 steps
        double best = 0.0;
        for (int64_t splits = 1; splits <= max_splits; ++splits) {
            const int64_t pw = std::max<int64_t>(1, (steps + TC_WARPS * splits - 1) / (TC_WARPS * splits));
            const int64_t waves = (tiles * ranges_of(pw) + slots - 1) / slots;
            const double cost = static_cast<double>(waves) * (static_cast<double>(pw) + block_steps);
            if (per_warp == 0 || cost < best) {
                best = cost;
                per_warp = pw;
            }
        }
    } else {
        // Enough K ranges for one wave of resident blocks, rounded up (measured: the shorter ranges
        // and finer balance beat an exact single wave); every warp keeps at least 2 steps.
        const double waves = tuning.tc_waves > 0 ? tuning.tc_waves : 1.0;
        const int64_t wave_warps =
            static_cast<int64_t>(waves * static_cast<double>(instance_info(a).resident_blocks) * sm_count * TC_WARPS);
        per_warp = (tiles * steps + wave_warps - 1) / wave_warps;
        if (per_warp < 2) per_warp = 2;
        // Even ranges (in whole steps per warp); the last one may be shorter.
        const int64_t splits = std::max<int64_t>(1, ranges_of(per_warp));
        per_warp = (steps + splits * TC_WARPS - 1) / (splits * TC_WARPS);
    }
    *split_rows = per_warp * TC_WARPS * step;
    return (a.K + *split_rows - 1) / *split_rows;
}

void quant_gemv_tc_launch(const GemvArgs& a, void* stream_ptr) {
    int index = 0;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(static_cast<unsigned>(a.N / TC_COLS), static_cast<unsigned>(a.splits));
    config.blockDim = dim3(TC_WARPS * 32);
    config.stream = static_cast<cudaStream_t>(stream_ptr);
    // May start while the previous kernel runs (it loads codes, then waits: prefetch_codes_then_wait).
    cudaLaunchAttribute early;
    early.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    early.val.programmaticStreamSerializationAllowed = 1;
    if (a.tc_pdl && instance_info(a).compiled_to_wait) {
        config.attrs = &early;
        config.numAttrs = 1;
    }
    cudaLaunchKernelEx(&config, tc_kernel(a, &index), a, quant_gemv_tile_counters());
}

int* quant_gemv_tile_counters() {
    static std::mutex mutex;
    static int* per_device[64] = {};
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return nullptr;
    const std::lock_guard<std::mutex> lock(mutex);
    if (!per_device[dev]) {
        int* p = nullptr;
        if (cudaMalloc(&p, QUANT_GEMV_MAX_TILES * sizeof(int)) != cudaSuccess) return nullptr;
        if (cudaMemset(p, 0, QUANT_GEMV_MAX_TILES * sizeof(int)) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
            cudaFree(p);
            return nullptr;
        }
        per_device[dev] = p;
    }
    return per_device[dev];
}

}  // namespace lota::kernels
