// The decode-sized quantized product on the CPU (see quant_gemv.h): y = x·W with W = S·(Q − Z + F)
// read straight from the packed codes, no dequantized copy of W.
//
// One row (batch-1 decode, the common case) runs row_strips: strips of 32 columns split over the
// threads, groups as the outer loop so packed rows are read in long contiguous runs, partial sums in
// vector registers. 2–16 rows run rows_strips: strips of one vector's columns, each code unpacked once into
// a register and multiplied into 8 rows' accumulators. Columns past the last whole strip, and more than 16
// rows, run gemv_block: blocks of BLOCK_N columns (parallel) and tiles of up to TILE_M rows, each packed
// word unpacked once per tile and multiplied into every row of the tile. All compute
//     y[m,n] = Σ_g S[g,n] · Σ_{k∈g} x[m,k] · (Q[k,n] − (Z[g,n] − F[g,n]))
// which is the specification's Σ_k x·S·(Q − Z + F) summed in another order (float32 throughout,
// rounded once to the output dtype). Only contiguous groups (group_rows > 0, a multiple of 32) take
// these kernels; act-order layers use the reference (dequantize, then one GEMM).
//
// The column loops are written to vectorize (GCC vector types in the strip kernels, cpu_simd.h); on x86-64
// the strip kernels are built with 8-float vectors for AVX2+FMA (x86-64-v3, the loader picks that clone
// when the CPU has it) and with 16-float vectors for AVX-512, taken where cpu_vector_floats() is 16. The
// lanes are columns, so both sum each column in the same order.
#include <algorithm>
#include <cstdint>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_simd.h"
#include "kernels/quant_gemv.h"

namespace lota::kernels {
namespace {

constexpr int64_t BLOCK_N = 64;  // output columns per task: 256 bytes of each packed row
constexpr int64_t TILE_M = 16;   // input rows sharing one unpacking of the codes

struct CpuGemvArgs {
    const float* x;  // [M, K] float32
    int64_t M, K, N;
    const int32_t* qweight;  // [K·bits/32, N]
    const int32_t* zeros;    // [G, N]
    const c10::Half* scales; // [G, N]
    const float* offset;     // [G, N] or null
    int bits;
    int64_t group_rows;
    float* y;  // [M, N] float32
};

// Columns [n0, n0 + nb) of rows [m0, m0 + mt), nb ≤ BLOCK_N, mt ≤ TILE_M.
LOTA_CPU_CLONES void gemv_block(const CpuGemvArgs& a, int64_t m0, int64_t mt, int64_t n0, int64_t nb) {
    float y_acc[TILE_M][BLOCK_N] = {};
    float g_acc[TILE_M][BLOCK_N];
    float shift[BLOCK_N], scale[BLOCK_N], w[BLOCK_N];
    const uint32_t mask = (1u << a.bits) - 1u;
    const int64_t G = (a.K + a.group_rows - 1) / a.group_rows;
    for (int64_t g = 0; g < G; ++g) {
        const int64_t gn = g * a.N + n0;
        for (int64_t j = 0; j < nb; ++j) {
            shift[j] = static_cast<float>(a.zeros[gn + j]) - (a.offset ? a.offset[gn + j] : 0.0f);
            scale[j] = static_cast<float>(a.scales[gn + j]);
        }
        for (int64_t m = 0; m < mt; ++m)
            for (int64_t j = 0; j < BLOCK_N; ++j) g_acc[m][j] = 0.0f;
        const int64_t k_end = std::min(a.K, (g + 1) * a.group_rows);
        for (int64_t k = g * a.group_rows; k < k_end; ++k) {
            // Code k of every column: bits [b·k, b·k + b) of the column's little-endian word stream
            // (Note [GPTQ bit stream] in dequant_formula.h); one shift for the whole block.
            const int64_t bit = k * a.bits;
            const int sh = static_cast<int>(bit & 31);
            const uint32_t* lo = reinterpret_cast<const uint32_t*>(a.qweight + (bit >> 5) * a.N + n0);
            if (sh + a.bits <= 32) {
                for (int64_t j = 0; j < nb; ++j) w[j] = static_cast<float>((lo[j] >> sh) & mask) - shift[j];
            } else {  // 3-bit codes straddling two words
                const uint32_t* hi = lo + a.N;
                for (int64_t j = 0; j < nb; ++j)
                    w[j] = static_cast<float>(((lo[j] >> sh) | (hi[j] << (32 - sh))) & mask) - shift[j];
            }
            for (int64_t m = 0; m < mt; ++m) {
                const float xk = a.x[(m0 + m) * a.K + k];
                for (int64_t j = 0; j < nb; ++j) g_acc[m][j] += xk * w[j];
            }
        }
        for (int64_t m = 0; m < mt; ++m)
            for (int64_t j = 0; j < nb; ++j) y_acc[m][j] += scale[j] * g_acc[m][j];
    }
    for (int64_t m = 0; m < mt; ++m)
        for (int64_t j = 0; j < nb; ++j) a.y[(m0 + m) * a.N + n0 + j] = y_acc[m][j];
}

#if defined(__GNUC__)
// One row (M == 1, the decode step of batch 1), strips [s0, s1) of STRIP columns. Groups are the outer
// loop, so each group's packed rows are read as long contiguous runs (one page each, prefetch-friendly)
// rather than short pieces at a stride of a whole row. A strip's partial sums stay in STRIP / W vector
// registers of W floats across the group, and the group's shift is taken out of the inner loop:
//     Σ_k x·(Q − s) = Σ_k x·Q − s·Σ_k x,   Σ_k x per group precomputed (x_sum).
constexpr int64_t STRIP = 32;  // columns per strip: 4 vectors on AVX2 (no register spills), 2 on AVX-512

// Code k of W columns from `lo` (the columns' packed word holding bit k·bits; the next word row at
// lo + N): bits [sh, sh + bits) of the little-endian stream; kStraddle (sh + bits > 32, 3-bit codes)
// takes the high bits from the next word. A template argument, so callers branch once per code row.
template <int W, bool kStraddle>
__attribute__((always_inline)) inline typename Vec<W>::f codes_at(const CpuGemvArgs& a, const uint32_t* lo, int sh,
                                                                  typename Vec<W>::u mask) {
    using V = Vec<W>;
    typename V::u code = load_vec_bytes<typename V::u>(lo) >> sh;
    if constexpr (kStraddle) code |= load_vec_bytes<typename V::u>(lo + a.N) << (32 - sh);
    return __builtin_convertvector((typename V::i)(code & mask), typename V::f);
}

// The grid of W columns of group row gn = g·N + n0: shift Z − F and scale S, converted W at a time (one
// vcvtdq2ps and one vcvtph2ps): at g 32 a scalar conversion per column cost as much as the group's 32
// code rows.
template <int W>
__attribute__((always_inline)) inline void grid_at(const CpuGemvArgs& a, int64_t gn, typename Vec<W>::f& shift,
                                                   typename Vec<W>::f& scale) {
    using V = Vec<W>;
    shift = __builtin_convertvector(load_vec_bytes<typename V::i>(a.zeros + gn), typename V::f);
    if (a.offset) shift -= load_vec_bytes<typename V::f>(a.offset + gn);
    scale = __builtin_convertvector(load_vec_bytes<typename V::h>(a.scales + gn), typename V::f);
}

// Code I of each column of a word (bits [B·I, B·I + B)) as the float 1 + q/2^B, exactly: moved to the top B
// bits of the mantissa by one shift and joined with the exponent of 1 by one and-or (one vpternlogd on AVX-512),
// with no integer-to-float conversion.
template <int B, int I, typename U, typename F>
__attribute__((always_inline)) inline F unit_code(U w) {
    constexpr int s = 23 - B - B * I;
    U t;
    if constexpr (s >= 0)
        t = w << s;
    else
        t = w >> -s;
    return (F)((t & (((1u << B) - 1u) << (23 - B))) | 0x3F800000u);
}

// Σ_k x·(1 + q/2^B) over the code rows [k0, k_end) of NV vectors of W columns from column n0, for B = 2, 4 or
// 8 bits (each word holds 32/B whole codes, loaded once for all of them): even codes of a word into
// units[0], odd ones into units[1] (two chains of FMAs a vector, not one).
template <int W, int NV, int B, size_t... I>
__attribute__((always_inline)) inline void unit_code_rows(const CpuGemvArgs& a, int64_t k0, int64_t k_end, int64_t n0,
                                                          typename Vec<W>::f (*units)[NV], std::index_sequence<I...>) {
    using V = Vec<W>;
    constexpr int PER = 32 / B;
    static_assert(sizeof...(I) == PER, "one index per code of a word");
    for (int64_t k = k0; k < k_end; k += PER) {
        const uint32_t* row = reinterpret_cast<const uint32_t*>(a.qweight + (k / PER) * a.N + n0);
        const float* xk = a.x + k;
        for (int v = 0; v < NV; ++v) {
            const typename V::u w = load_vec_bytes<typename V::u>(row + W * v);
            ((units[I % 2][v] += xk[I] * unit_code<B, I, typename V::u, typename V::f>(w)), ...);
        }
    }
}

template <int W>
__attribute__((always_inline)) inline void row_strips(const CpuGemvArgs& a, const float* x_sum, int64_t s0,
                                                      int64_t s1) {
    using V = Vec<W>;
    using vf = typename V::f;
    constexpr int NV = STRIP / W;
    const typename V::u vmask = typename V::u{} + ((1u << a.bits) - 1u);
    const int64_t G = (a.K + a.group_rows - 1) / a.group_rows;
    float* y = a.y;
    for (int64_t n = s0 * STRIP; n < s1 * STRIP; ++n) y[n] = 0.0f;
    for (int64_t g = 0; g < G; ++g) {
        const int64_t k0 = g * a.group_rows, k_end = std::min(a.K, k0 + a.group_rows);
        const bool whole_words = 32 % a.bits == 0 && k_end - k0 == a.group_rows;
        for (int64_t s = s0; s < s1; ++s) {
            const int64_t n0 = s * STRIP;
            vf acc[NV] = {};
            if (whole_words) {
                // 2, 4 or 8 bits: Σ x·(1 + q/2^b) (unit_code_rows), then Σ x·q = 2^b·(that − Σ x).
                vf units[2][NV] = {};
                switch (a.bits) {
                    case 2: unit_code_rows<W, NV, 2>(a, k0, k_end, n0, units, std::make_index_sequence<16>{}); break;
                    case 4: unit_code_rows<W, NV, 4>(a, k0, k_end, n0, units, std::make_index_sequence<8>{}); break;
                    default: unit_code_rows<W, NV, 8>(a, k0, k_end, n0, units, std::make_index_sequence<4>{}); break;
                }
                const float xs = x_sum[g], unit = static_cast<float>(1 << a.bits);
                for (int v = 0; v < NV; ++v) acc[v] = (units[0][v] + units[1][v] - xs) * unit;
            } else {  // 3 bits (codes may straddle two words), or a short last group
                for (int64_t k = k0; k < k_end; ++k) {
                    const int64_t bit = k * a.bits;
                    const int sh = static_cast<int>(bit & 31);
                    const uint32_t* lo = reinterpret_cast<const uint32_t*>(a.qweight + (bit >> 5) * a.N + n0);
                    const float xk = a.x[k];
                    if (sh + a.bits <= 32)
                        for (int v = 0; v < NV; ++v) acc[v] += xk * codes_at<W, false>(a, lo + W * v, sh, vmask);
                    else
                        for (int v = 0; v < NV; ++v) acc[v] += xk * codes_at<W, true>(a, lo + W * v, sh, vmask);
                }
            }
            const int64_t gn = g * a.N + n0;
            const float xs = x_sum[g];
            for (int v = 0; v < NV; ++v) {
                vf shift, scale;
                grid_at<W>(a, gn + W * v, shift, scale);
                vf out = load_vec_bytes<vf>(y + n0 + W * v);
                out += scale * (acc[v] - shift * xs);
                __builtin_memcpy(y + n0 + W * v, &out, sizeof(out));
            }
        }
    }
}

// 2–16 rows (a batched decode step): one strip of W columns (one vector) against RT rows at a time, so
// each code row of the strip is unpacked once into a register and multiplied into RT rows' accumulators,
// and read again for the next rows from L1. The group's shift comes out of the inner loop as in
// row_strips, with Σ_k x per row and group in x_sum [M, G]. (8 rows of one vector measured faster than 4
// rows of two on a 2-core EPYC: the unpacking is shared by more rows.)
constexpr int RT = 8;  // rows per tile

template <int W, int R>
__attribute__((always_inline)) inline void strip_rows(const CpuGemvArgs& a, const float* x_sum, int64_t m0,
                                                      int64_t n0) {
    using V = Vec<W>;
    using vf = typename V::f;
    const typename V::u vmask = typename V::u{} + ((1u << a.bits) - 1u);
    const int64_t G = (a.K + a.group_rows - 1) / a.group_rows;
    const float* x = a.x + m0 * a.K;
    vf out[R] = {};
    for (int64_t g = 0; g < G; ++g) {
        const int64_t k0 = g * a.group_rows, k_end = std::min(a.K, k0 + a.group_rows);
        vf acc[R] = {};
        if (32 % a.bits == 0 && k_end - k0 == a.group_rows) {
            const int per = 32 / a.bits;
            for (int64_t k = k0; k < k_end; k += per) {
                const uint32_t* row = reinterpret_cast<const uint32_t*>(a.qweight + (k / per) * a.N + n0);
                typename V::u w = load_vec_bytes<typename V::u>(row);
                for (int i = 0; i < per; ++i) {
                    const vf c = __builtin_convertvector((typename V::i)(w & vmask), vf);
                    w >>= a.bits;
                    for (int r = 0; r < R; ++r) acc[r] += x[r * a.K + k + i] * c;
                }
            }
        } else {  // 3 bits (codes may straddle two words), or a short last group
            for (int64_t k = k0; k < k_end; ++k) {
                const int64_t bit = k * a.bits;
                const uint32_t* lo = reinterpret_cast<const uint32_t*>(a.qweight + (bit >> 5) * a.N + n0);
                const int sh = static_cast<int>(bit & 31);
                const vf c =
                    sh + a.bits <= 32 ? codes_at<W, false>(a, lo, sh, vmask) : codes_at<W, true>(a, lo, sh, vmask);
                for (int r = 0; r < R; ++r) acc[r] += x[r * a.K + k] * c;
            }
        }
        vf shift, scale;
        grid_at<W>(a, g * a.N + n0, shift, scale);
        for (int r = 0; r < R; ++r) out[r] += scale * (acc[r] - shift * x_sum[(m0 + r) * G + g]);
    }
    for (int r = 0; r < R; ++r) __builtin_memcpy(a.y + (m0 + r) * a.N + n0, &out[r], sizeof(vf));
}

// Strips [s0, s1) of W columns, all M rows: tiles of RT rows, then the last M mod RT rows in one smaller tile.
template <int W>
__attribute__((always_inline)) inline void rows_strips(const CpuGemvArgs& a, const float* x_sum, int64_t s0,
                                                       int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
        const int64_t n0 = s * W;
        int64_t m = 0;
        for (; m + RT <= a.M; m += RT) strip_rows<W, RT>(a, x_sum, m, n0);
        switch (a.M - m) {
            case 7: strip_rows<W, 7>(a, x_sum, m, n0); break;
            case 6: strip_rows<W, 6>(a, x_sum, m, n0); break;
            case 5: strip_rows<W, 5>(a, x_sum, m, n0); break;
            case 4: strip_rows<W, 4>(a, x_sum, m, n0); break;
            case 3: strip_rows<W, 3>(a, x_sum, m, n0); break;
            case 2: strip_rows<W, 2>(a, x_sum, m, n0); break;
            case 1: strip_rows<W, 1>(a, x_sum, m, n0); break;
            default: break;
        }
    }
}

// The builds: 8-float vectors (AVX2+FMA, or the baseline ISA) and 16-float vectors (AVX-512).
LOTA_CPU_CLONES void gemv_row_strips8(const CpuGemvArgs& a, const float* x_sum, int64_t s0, int64_t s1) {
    row_strips<8>(a, x_sum, s0, s1);
}
LOTA_CPU_CLONES void gemv_rows_strips8(const CpuGemvArgs& a, const float* x_sum, int64_t s0, int64_t s1) {
    rows_strips<8>(a, x_sum, s0, s1);
}
#if LOTA_HAVE_CPU_AVX512
LOTA_CPU_AVX512 void gemv_row_strips16(const CpuGemvArgs& a, const float* x_sum, int64_t s0, int64_t s1) {
    row_strips<16>(a, x_sum, s0, s1);
}
LOTA_CPU_AVX512 void gemv_rows_strips16(const CpuGemvArgs& a, const float* x_sum, int64_t s0, int64_t s1) {
    rows_strips<16>(a, x_sum, s0, s1);
}
#endif
#endif

}  // namespace

at::Tensor quant_gemv_cpu(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& zeros,
                          const at::Tensor& scales, const at::Tensor& offset, int bits, int64_t group_rows) {
    const at::Tensor xf = x.to(at::kFloat).contiguous();
    CpuGemvArgs a;
    a.M = xf.size(0);
    a.K = xf.size(1);
    a.N = qweight.size(1);
    at::Tensor y = at::empty({a.M, a.N}, xf.options());
    a.x = xf.data_ptr<float>();
    a.qweight = qweight.data_ptr<int32_t>();
    a.zeros = zeros.data_ptr<int32_t>();
    a.scales = scales.data_ptr<c10::Half>();
    a.offset = offset.defined() ? offset.data_ptr<float>() : nullptr;
    a.bits = bits;
    a.group_rows = group_rows;
    a.y = y.data_ptr<float>();
#if defined(__GNUC__)
    if (a.M <= 16) {
        // Σ_k x per row and group: the groups' shifts leave the inner loops (row_strips).
        const int64_t G = (a.K + group_rows - 1) / group_rows;
        const at::Tensor x_sum = at::pad(xf, {0, G * group_rows - a.K}).view({a.M, G, group_rows}).sum(-1);
        const float* xs = x_sum.data_ptr<float>();
        [[maybe_unused]] const bool wide = cpu_vector_floats() == 16;
        if (a.M == 1) {
            const int64_t strips = a.N / STRIP;
            at::parallel_for(0, strips, 1, [&](int64_t s0, int64_t s1) {
#if LOTA_HAVE_CPU_AVX512
                if (wide) return gemv_row_strips16(a, xs, s0, s1);
#endif
                gemv_row_strips8(a, xs, s0, s1);
            });
            if (a.N % STRIP != 0) gemv_block(a, 0, 1, strips * STRIP, a.N % STRIP);
        } else {
            // Strips of 8 columns; with 16-float vectors, pairs of them, and a last odd one in the 8-float build.
            const int64_t strips = a.N / 8;
            int64_t done = 0;
#if LOTA_HAVE_CPU_AVX512
            if (wide) {
                done = 2 * (strips / 2);
                at::parallel_for(0, strips / 2, 2, [&](int64_t s0, int64_t s1) { gemv_rows_strips16(a, xs, s0, s1); });
            }
#endif
            at::parallel_for(done, strips, 4, [&](int64_t s0, int64_t s1) { gemv_rows_strips8(a, xs, s0, s1); });
            if (a.N % 8 != 0) gemv_block(a, 0, a.M, strips * 8, a.N % 8);
        }
        return y;
    }
#endif
    const int64_t blocks = (a.N + BLOCK_N - 1) / BLOCK_N;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
            for (int64_t m0 = 0; m0 < a.M; m0 += TILE_M)
                gemv_block(a, m0, std::min(TILE_M, a.M - m0), b * BLOCK_N, std::min(BLOCK_N, a.N - b * BLOCK_N));
    });
    return y;
}

}  // namespace lota::kernels
