// CUDA kernel of the decode-sized quantized product y = x·Wᵀ, W[k,n] = S·(Q − Z + F) read from
// the packed GPTQ codes (see quant_gemv.h; the CPU reference is dequant + GEMM).
//
// Work split: a block owns 256 consecutive output columns (64 lanes × 4 columns, one 16-byte
// load per packed word row when N allows it, else 1 column per lane) and one range of K rows,
// which its SLICES warps-pairs share chunk by chunk (32 rows whose codes fill exactly `bits`
// words). x's rows are staged in shared memory 256 at a time as float32 (every thread reads the
// same x values: broadcasts). The slices' sums are added in a fixed order in shared memory, each
// block writes float32 partial sums for its K range, and the last block of its column tile to finish
// (an arrival counter per tile) adds the ranges in a fixed order (deterministic whichever block is
// last), adds the bias and rounds once to the output type; one K range is rounded and stored directly.
// Without the counters (quant_gemv_tile_counters) a second kernel adds the ranges in the same order.
//
// When the rows of a group are contiguous (g = k / group_rows, no act-order), the group's scale
// is factored out:  Σ x·S(Q − Z + F) = S·(Σ x·Q − (Z − F)·Σ x), so the inner loop is one FMA per
// code and row of x, on the code as the float 1 + Q/2^bits (one shift and one LOP3 make it; the
// sum of those is 2^-bits·Σ x·Q + Σ x), and the scale is applied once per group. With act-order (g = g_idx[k]) every code is dequantized with
// the reference's formula and rounding order (kernels::dequant_value).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <type_traits>
#include <utility>

#include "kernels/quant_gemv_cuda.h"
#include "kernels/quant_gemv_io.cuh"

namespace lota::kernels {
namespace {

constexpr int LANES = 64;  // threads along the columns of a block
constexpr int PIECE = 256;  // rows of x staged in shared memory at a time
constexpr int CHUNK = 32;   // rows whose codes fill exactly `bits` words

// Code I of a 32-code chunk held in BITS words: kernels::gptq_stream_get with the word index and
// shift known at compile time (so `w` stays in registers), returned as the exact float 2^23 + q
// (an OR instead of the slow int-to-float conversion; the act-order path subtracts 2^23).
template <int BITS, int I>
__device__ __forceinline__ float code_as_float(const int32_t (&w)[BITS]) {
    constexpr int bit = I * BITS, word = bit / 32, shift = bit % 32;
    uint32_t v = static_cast<uint32_t>(w[word]) >> shift;
    if constexpr (shift + BITS > 32) v |= static_cast<uint32_t>(w[word + 1]) << (32 - shift);
    return __uint_as_float((v & ((1u << BITS) - 1u)) | 0x4B000000u);
}

// The same code q as the exact float 1 + q / 2^BITS: q shifted to the top of 1.0's mantissa, then
// masked and OR-ed into 1.0 by one LOP3 (written out because ptxas would otherwise use two: a LOP3
// takes one immediate, and the mask and 1.0 are two); the grouped path's sums undo the 1 and the
// 2^-BITS at the group's end.
template <int BITS, int I>
__device__ __forceinline__ float code_as_unit(const int32_t (&w)[BITS], uint32_t mask, uint32_t one) {
    constexpr int bit = I * BITS, word = bit / 32, shift = bit % 32, top = 23 - BITS;
    uint32_t v;
    if constexpr (shift + BITS > 32) {  // 3-bit codes across two words
        v = ((static_cast<uint32_t>(w[word]) >> shift) | (static_cast<uint32_t>(w[word + 1]) << (32 - shift))) << top;
    } else if constexpr (shift > top) {
        v = static_cast<uint32_t>(w[word]) >> (shift - top);
    } else {
        v = static_cast<uint32_t>(w[word]) << (top - shift);
    }
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(v), "r"(mask), "r"(one));  // (v & mask) | one
    return __uint_as_float(r);
}

// Calls f(std::integral_constant<int, I>) for I = 0 .. 31 (a compile-time loop).
template <typename F, int... I>
__device__ __forceinline__ void for_each_code(F&& f, std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
}

// Loads the COLS words at qweight[row, n0 .. n0+COLS) (zeros for columns past N or rows past K).
template <int COLS>
__device__ __forceinline__ void load_words(const int32_t* __restrict__ qweight, int64_t row, int64_t word_rows,
                                           int64_t N, int64_t n0, int32_t (&w)[COLS]) {
    if (row >= word_rows) {
#pragma unroll
        for (int c = 0; c < COLS; ++c) w[c] = 0;  // rows past K (x is 0 there)
    } else if constexpr (COLS == 4) {
        const int4 v = __ldg(reinterpret_cast<const int4*>(qweight + row * N + n0));
        w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
    } else {
#pragma unroll
        for (int c = 0; c < COLS; ++c) w[c] = n0 + c < N ? __ldg(qweight + row * N + n0 + c) : 0;
    }
}

template <int BITS, int COLS>
__device__ __forceinline__ void load_chunk(const GemvArgs& a, int64_t k0, int64_t word_rows, int64_t n0,
                                           int32_t (&words)[COLS][BITS]) {
    const int64_t w0 = k0 / CHUNK * BITS;  // k0 is a multiple of 32: the chunk starts a word
#pragma unroll
    for (int b = 0; b < BITS; ++b) {
        int32_t w[COLS];
        load_words<COLS>(a.qweight, w0 + b, word_rows, a.N, n0, w);
#pragma unroll
        for (int c = 0; c < COLS; ++c) words[c][b] = w[c];
    }
}

// Σ_s partial[s, i] over the K ranges in a fixed order: eight running sums (loads in flight), combined
// in a fixed tree. Read past L1: other blocks wrote them.
__device__ __forceinline__ float sum_of_ranges(const float* partial, int64_t splits, int64_t MN, int64_t i) {
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t s = 0;
    for (; s + 8 <= splits; s += 8)
#pragma unroll
        for (int j = 0; j < 8; ++j) part[j] += __ldcg(partial + (s + j) * MN + i);
    for (int j = 0; s < splits; ++s, ++j) part[j] += __ldcg(partial + s * MN + i);
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

__device__ __forceinline__ void finish_output(const GemvArgs& a, int64_t m, int64_t n, float v) {
    if (a.bias) v += load_as_float(a.bias, a.out_type, n);
    store_as(a.out, a.out_type, m * a.N + n, v);
}

// SLICES: groups of LANES threads sharing a block's K range (see slices_for). tile_counters: see
// quant_gemv_tile_counters (null: only the partial sums are written, for gemv_reduce_kernel).
template <int BITS, int COLS, int MROWS, bool GROUPED, int SLICES>
__global__ void __launch_bounds__(LANES * SLICES) quant_gemv_kernel(GemvArgs a, int* tile_counters) {
    constexpr int THREADS = LANES * SLICES;
    __shared__ float xs[MROWS][PIECE];
    __shared__ float xsum[MROWS][PIECE / CHUNK];
    __shared__ int32_t gs[PIECE];
    __shared__ float red[SLICES > 1 ? SLICES - 1 : 1][MROWS][LANES * COLS];
    const int lane = threadIdx.x % LANES, slice = threadIdx.x / LANES;
    const int64_t N = a.N, K = a.K, M = a.M;
    const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * LANES + lane) * COLS;
    const int64_t m0 = static_cast<int64_t>(blockIdx.z) * MROWS;
    const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * a.split_rows;
    const int64_t k_end = k_begin + a.split_rows < K ? k_begin + a.split_rows : K;
    const int64_t word_rows = K * BITS / 32;
    const bool active = n0 < N;
    const __half* scales = reinterpret_cast<const __half*>(a.scales);

    float acc[MROWS][COLS];
#pragma unroll
    for (int m = 0; m < MROWS; ++m)
#pragma unroll
        for (int c = 0; c < COLS; ++c) acc[m][c] = 0.0f;
    // Grouped path: the running group g_run's sums Σ x·(1 + q/2^BITS) per column and Σ x, added to
    // acc as S·(2^BITS·dot − (2^BITS + Z − F)·Σx) = S·Σ x·(q − Z + F) when the group ends.
    float dot[MROWS][COLS], xs_run[MROWS];
    int64_t g_run = -1;
    const auto clear_run = [&] {
#pragma unroll
        for (int m = 0; m < MROWS; ++m) {
            xs_run[m] = 0.0f;
#pragma unroll
            for (int c = 0; c < COLS; ++c) dot[m][c] = 0.0f;
        }
    };
    // The running group's scale and Z − F per column, loaded when the group starts so that the loads
    // are in flight while its chunks are summed, not waited for when it ends.
    float s_run[COLS], zf_run[COLS];
    const auto start_group = [&](int64_t g) {
#pragma unroll
        for (int c = 0; c < COLS; ++c) {
            const int64_t gn = g * N + n0 + c;
            const bool in = n0 + c < N;
            s_run[c] = in ? __half2float(scales[gn]) : 0.0f;
            zf_run[c] = in ? static_cast<float>(a.zeros[gn]) - (a.offset ? a.offset[gn] : 0.0f) : 0.0f;
        }
    };
    const auto flush = [&](int64_t g) {
        if (g < 0) return;
#pragma unroll
        for (int c = 0; c < COLS; ++c) {
            if (n0 + c >= N) break;
#pragma unroll
            for (int m = 0; m < MROWS; ++m)
                acc[m][c] += s_run[c] * (float(1 << BITS) * dot[m][c] - (float(1 << BITS) + zf_run[c]) * xs_run[m]);
        }
        clear_run();
    };
    clear_run();

    for (int64_t p0 = k_begin; p0 < k_end; p0 += PIECE) {
        const int rows = static_cast<int>(k_end - p0 < PIECE ? k_end - p0 : PIECE);
        // This slice's chunks of the piece start at r0 = slice·32 and step by SLICES·32. Their
        // first loads are issued before the staging barriers so that they overlap them.
        int32_t next[COLS][BITS];
        const int first = slice * CHUNK;
        if (active && first < rows) load_chunk<BITS, COLS>(a, p0 + first, word_rows, n0, next);
        __syncthreads();  // the previous piece is no longer read
        for (int i = threadIdx.x; i < MROWS * PIECE; i += THREADS) {
            const int m = i / PIECE, r = i % PIECE;
            xs[m][r] = (m0 + m < M && r < rows) ? load_as_float(a.x, a.x_type, (m0 + m) * K + p0 + r) : 0.0f;
        }
        if constexpr (!GROUPED)
            for (int r = threadIdx.x; r < PIECE; r += THREADS) gs[r] = r < rows ? a.g_idx[p0 + r] : 0;
        __syncthreads();
        if constexpr (GROUPED) {
            // Σx per (row of x, chunk): one warp per pair, a fixed shuffle tree (deterministic).
            const int warp = threadIdx.x / 32, wl = threadIdx.x % 32;
            for (int i = warp; i < MROWS * (PIECE / CHUNK); i += THREADS / 32) {
                const int m = i / (PIECE / CHUNK), ch = i % (PIECE / CHUNK);
                float v = xs[m][ch * CHUNK + wl];
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
                if (wl == 0) xsum[m][ch] = v;
            }
            __syncthreads();
        }
        if (!active) continue;
        for (int r0 = first; r0 < rows; r0 += SLICES * CHUNK) {
            int32_t words[COLS][BITS];
#pragma unroll
            for (int c = 0; c < COLS; ++c)
#pragma unroll
                for (int b = 0; b < BITS; ++b) words[c][b] = next[c][b];
            if (r0 + SLICES * CHUNK < rows)  // prefetch this slice's next chunk
                load_chunk<BITS, COLS>(a, p0 + r0 + SLICES * CHUNK, word_rows, n0, next);
            if constexpr (GROUPED) {
                // A new group: the finished one's sums, scaled, go to acc (once per group, not per chunk).
                const int64_t g = (p0 + r0) / a.group_rows;
                if (g != g_run) {
                    flush(g_run);
                    g_run = g;
                    start_group(g);
                }
#pragma unroll
                for (int m = 0; m < MROWS; ++m) xs_run[m] += xsum[m][r0 / CHUNK];
                const uint32_t unit_mask = ((1u << BITS) - 1u) << (23 - BITS), unit_one = 0x3F800000u;
                for_each_code(
                    [&](auto ic) {
                        constexpr int i = decltype(ic)::value;
                        float xv[MROWS];
#pragma unroll
                        for (int m = 0; m < MROWS; ++m) xv[m] = xs[m][r0 + i];
#pragma unroll
                        for (int c = 0; c < COLS; ++c) {
                            const float u = code_as_unit<BITS, i>(words[c], unit_mask, unit_one);
#pragma unroll
                            for (int m = 0; m < MROWS; ++m) dot[m][c] = fmaf(xv[m], u, dot[m][c]);
                        }
                    },
                    std::make_integer_sequence<int, CHUNK>{});
            } else {
                for_each_code(
                    [&](auto ic) {
                        constexpr int i = decltype(ic)::value;
                        const int64_t g = gs[r0 + i];
#pragma unroll
                        for (int c = 0; c < COLS; ++c) {
                            if (n0 + c >= N) break;
                            const int64_t gn = g * N + n0 + c;
                            const float f = a.offset ? a.offset[gn] : 0.0f;
                            // The spec's formula: (q − z) exact, + f, · s (kernels::dequant_value).
                            const float w = __half2float(scales[gn]) *
                                            (((code_as_float<BITS, i>(words[c]) - 8388608.0f) - static_cast<float>(a.zeros[gn])) + f);
#pragma unroll
                            for (int m = 0; m < MROWS; ++m) acc[m][c] = fmaf(xs[m][r0 + i], w, acc[m][c]);
                        }
                    },
                    std::make_integer_sequence<int, CHUNK>{});
            }
        }
    }
    if constexpr (GROUPED) flush(g_run);
    // Slices 1.. hand their sums to slice 0, which adds them in slice order and writes the partial.
    if (SLICES > 1 && slice > 0) {
#pragma unroll
        for (int m = 0; m < MROWS; ++m)
#pragma unroll
            for (int c = 0; c < COLS; ++c) red[slice - 1][m][lane * COLS + c] = acc[m][c];
    }
    if constexpr (SLICES > 1) __syncthreads();
    const bool writer = slice == 0 && active;
    if (writer) {
#pragma unroll
        for (int s = 0; s < SLICES - 1; ++s)
#pragma unroll
            for (int m = 0; m < MROWS; ++m)
#pragma unroll
                for (int c = 0; c < COLS; ++c) acc[m][c] += red[s][m][lane * COLS + c];
    }
    if (tile_counters && a.splits == 1) {  // one K range: round and store (0 + v: the reduction's value)
        if (writer)
#pragma unroll
            for (int m = 0; m < MROWS; ++m)
#pragma unroll
                for (int c = 0; c < COLS; ++c)
                    if (m0 + m < M && n0 + c < N) finish_output(a, m0 + m, n0 + c, 0.0f + acc[m][c]);
        return;
    }
    if (writer) {
#pragma unroll
        for (int m = 0; m < MROWS; ++m) {
            if (m0 + m >= M) break;
            float* dst = a.partial + (static_cast<int64_t>(blockIdx.y) * M + m0 + m) * N + n0;
#pragma unroll
            for (int c = 0; c < COLS; ++c)
                if (n0 + c < N) dst[c] = acc[m][c];
        }
    }
    if (!tile_counters) return;
    // The last block of this column tile to arrive adds every range's partial sums and resets the counter.
    __shared__ bool last_block;
    const int64_t tile = static_cast<int64_t>(blockIdx.z) * gridDim.x + blockIdx.x;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(&tile_counters[tile], 1) == a.splits - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    constexpr int TILE_COLS = LANES * COLS;
    const int64_t col0 = static_cast<int64_t>(blockIdx.x) * TILE_COLS;
    for (int i = threadIdx.x; i < MROWS * TILE_COLS; i += THREADS) {
        const int64_t m = m0 + i / TILE_COLS, n = col0 + i % TILE_COLS;
        if (m < M && n < N) finish_output(a, m, n, sum_of_ranges(a.partial, a.splits, M * N, m * N + n));
    }
    if (threadIdx.x == 0) tile_counters[tile] = 0;
}

// out[m, n] = Σ_s partial[s, m, n] (s in order) + bias[n], rounded once: without the tile counters.
__global__ void gemv_reduce_kernel(GemvArgs a) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t MN = a.M * a.N;
    if (i >= MN) return;
    finish_output(a, i / a.N, i % a.N, sum_of_ranges(a.partial, a.splits, MN, i));
}

// Threads per block along K, as measured on an H100 (bench/gemv.md): four slices help narrow
// layers (few column blocks) at 1–4 rows; wide layers and more rows do better with one.
int slices_for(int64_t M, int64_t N) { return M <= 4 && N < 8192 ? 4 : 1; }

// The dispatch from a plan to its kernel instantiation: calls op(kernel, threads per block) with the kernel
// that a (bits, vector loads, rows, groups, slices) runs, for launching it or asking its occupancy.
template <int BITS, int COLS, int MROWS, class Op>
void with_groups(const GemvArgs& a, Op&& op) {
    const bool grouped = a.group_rows > 0, sliced = slices_for(a.M, a.N) == 4;
    if (grouped && sliced)
        op(quant_gemv_kernel<BITS, COLS, MROWS, true, 4>, LANES * 4);
    else if (grouped)
        op(quant_gemv_kernel<BITS, COLS, MROWS, true, 1>, LANES);
    else if (sliced)
        op(quant_gemv_kernel<BITS, COLS, MROWS, false, 4>, LANES * 4);
    else
        op(quant_gemv_kernel<BITS, COLS, MROWS, false, 1>, LANES);
}

int rows_per_block(int64_t M) { return M == 1 ? 1 : M == 2 ? 2 : M <= 4 ? 4 : 8; }  // more rows: more blocks along z

template <int BITS, int COLS, class Op>
void with_rows(const GemvArgs& a, Op&& op) {
    switch (rows_per_block(a.M)) {
        case 1: return with_groups<BITS, COLS, 1>(a, op);
        case 2: return with_groups<BITS, COLS, 2>(a, op);
        case 4: return with_groups<BITS, COLS, 4>(a, op);
        default: return with_groups<BITS, COLS, 8>(a, op);
    }
}

template <class Op>
void with_kernel(const GemvArgs& a, Op&& op) {
    const auto cols = [&](auto bits) {
        constexpr int BITS = decltype(bits)::value;
        if (a.vector_loads)
            with_rows<BITS, 4>(a, op);
        else
            with_rows<BITS, 1>(a, op);
    };
    switch (a.bits) {
        case 2: return cols(std::integral_constant<int, 2>{});
        case 3: return cols(std::integral_constant<int, 3>{});
        case 4: return cols(std::integral_constant<int, 4>{});
        default: return cols(std::integral_constant<int, 8>{});
    }
}

// Blocks of a's kernel that fit on one SM at once (registers, shared memory), asked once per kernel.
int resident_blocks(const GemvArgs& a) {
    static std::mutex mutex;
    static std::map<const void*, int> known;
    int blocks = 1;
    with_kernel(a, [&](auto kernel, int threads) {
        const std::lock_guard<std::mutex> lock(mutex);
        const auto key = reinterpret_cast<const void*>(kernel);
        auto it = known.find(key);
        if (it == known.end()) {
            int n = 0;
            if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, 0) != cudaSuccess) {
                (void)cudaGetLastError();  // not left for the launch to report: one block per SM is a valid plan
                n = 0;
            }
            it = known.emplace(key, n > 0 ? n : 1).first;
        }
        blocks = it->second;
    });
    return blocks;
}

int sm_count() {
    static const int count = current_device_attribute(cudaDevAttrMultiProcessorCount, 108);
    return count;
}

}  // namespace

namespace {

int64_t simt_splits(const GemvArgs& a, int blocks_per_sm, int64_t* split_rows) {
    const int64_t M = a.M, K = a.K, N = a.N;
    const int64_t cols_per_block = static_cast<int64_t>(LANES) * (a.vector_loads ? 4 : 1);
    const int64_t col_blocks = (N + cols_per_block - 1) / cols_per_block;
    const int64_t row_blocks = M <= 4 ? 1 : (M + 7) / 8;
    const int64_t chunks = (K + CHUNK - 1) / CHUNK;
    // Enough warps per SM to hide load latency (about 32: 16 blocks of two warps, or 4 of eight;
    // blocks_per_sm < 0: as many blocks as fit on an SM at once, one wave); each range keeps at least
    // 4 chunks (8 with slices: two per slice), so the partial sums stay small next to the codes.
    const int slices = slices_for(M, N);
    const int64_t per_sm = blocks_per_sm > 0 ? blocks_per_sm
                           : blocks_per_sm < 0 ? resident_blocks(a)
                                               : slices == 1 && M <= 4 ? 16 : 4;
    const int64_t target = per_sm * sm_count();
    int64_t splits = (target + col_blocks * row_blocks - 1) / (col_blocks * row_blocks);
    const int64_t min_chunks = slices == 1 ? 4 : 8;
    const int64_t max_splits = chunks / min_chunks > 0 ? chunks / min_chunks : 1;
    splits = splits < 1 ? 1 : splits > max_splits ? max_splits : splits;
    const int64_t chunks_per_split = (chunks + splits - 1) / splits;
    *split_rows = chunks_per_split * CHUNK;
    return (chunks + chunks_per_split - 1) / chunks_per_split;
}

}  // namespace

void quant_gemv_cuda_plan(GemvArgs& a, const GemvTuning& tuning) {
    // One row of x too: with the codes read from device memory, as a decode step reads them, the
    // tensor-core kernels are faster than the SIMT one on most 8B layers (bench/gemv.md, --copies).
    // Up to 8 rows the codes are mma's A operand (fewer instructions per code, fewer registers).
    const int tc_a_max_rows = tuning.tc_a_max_rows != 0 ? tuning.tc_a_max_rows : 8;
    a.tc_codes_a = a.M <= tc_a_max_rows;
    a.tc_pdl = tuning.tc_pdl >= 0;
    a.tc_x_smem = tuning.tc_x_smem >= 0;
    a.tc_batch = tuning.tc_batch > 0 ? tuning.tc_batch : a.bits == 2 || a.M > 8 ? 2 : 4;
    const int tc_min_rows = tuning.tc_min_rows > 0 ? tuning.tc_min_rows : 1;
    a.tensor_cores = tuning.tensor_cores && a.M >= tc_min_rows && quant_gemv_tc_eligible(a);
    a.splits = a.tensor_cores ? quant_gemv_tc_splits(a, tuning, sm_count(), &a.split_rows)
                              : simt_splits(a, tuning.simt_blocks_per_sm, &a.split_rows);
}

int quant_gemv_cuda_launch(const GemvArgs& a, void* stream_ptr) {
    if (a.M == 0 || a.N == 0) return 0;
    const auto stream = static_cast<cudaStream_t>(stream_ptr);
    if (a.tensor_cores) {  // reduces its K ranges itself
        quant_gemv_tc_launch(a, stream_ptr);
        return static_cast<int>(cudaGetLastError());
    }
    // The column tiles' counters, when there are few enough tiles; else the separate reduction.
    const int64_t cols_per_block = static_cast<int64_t>(LANES) * (a.vector_loads ? 4 : 1);
    const int64_t mrows = rows_per_block(a.M);
    const dim3 grid(static_cast<unsigned>((a.N + cols_per_block - 1) / cols_per_block), static_cast<unsigned>(a.splits),
                    static_cast<unsigned>((a.M + mrows - 1) / mrows));
    const int64_t tiles = static_cast<int64_t>(grid.x) * grid.z;
    int* counters = tiles <= QUANT_GEMV_MAX_TILES ? quant_gemv_tile_counters() : nullptr;
    with_kernel(a, [&](auto kernel, int threads) { kernel<<<grid, threads, 0, stream>>>(a, counters); });
    if (!counters) {
        const int64_t MN = a.M * a.N;
        gemv_reduce_kernel<<<static_cast<unsigned>((MN + 255) / 256), 256, 0, stream>>>(a);
    }
    return static_cast<int>(cudaGetLastError());
}

}  // namespace lota::kernels
