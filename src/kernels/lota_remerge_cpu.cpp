// The fused LoTA re-merge on the CPU (see lota_remerge_cpu.h). The per-weight step is remerge_base_code +
// remerge_step (kernels/lota_remerge_formula.h), the one the CUDA kernel runs; the tensor-op re-merge
// (quant/lota_remerge.cpp) is the reference a CPU test checks it against, bit for bit.
//
// Work split: one task per group of g rows. A group is walked in blocks of rows that fill whole packed
// words (32/b rows in one word for b = 2, 4, 8; 32 rows in three words for b = 3, whose codes straddle
// words), and within a block eight columns at a time: codes, flags and P_new stream through once in
// memory order, and the group's column sums go straight to its rows of sum_p and sum_m.
#include "kernels/lota_remerge_cpu.h"

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>

#include "kernels/cpu_simd.h"
#include "kernels/dequant_formula.h"  // gptq_stream_get / _put: Note [GPTQ bit stream]
#include "kernels/lota_remerge_formula.h"

namespace lota::kernels {

namespace {

struct RemergeArgs {
    const int32_t* qweight;
    const uint8_t* moved;
    const float* p_old;
    const int8_t* a_old;
    const int8_t* b_old;
    int64_t r;
    const float* p_new;
    int32_t* qweight_out;
    uint8_t* moved_out;
    int32_t* sum_p;
    int32_t* sum_m;
    int64_t N, g;
    int t;
};

// P_old[k, n], exact: from the float product when there is one, else an r-term int8 dot product.
inline int product_old(const RemergeArgs& a, int64_t k, int64_t n) {
    if (a.p_old != nullptr) return static_cast<int>(a.p_old[k * a.N + n]);
    int32_t dot = 0;  // |P| ≤ r
    for (int64_t q = 0; q < a.r; ++q) dot += a.a_old[k * a.r + q] * a.b_old[n * a.r + q];
    return dot;
}

// The rows of group j; returns #(M = +1) and #(M = −1) in up and down. Written so that the loops over
// a row's eight columns vectorise: the rare moved codes are corrected in a separate branch.
template <int BITS>
__attribute__((always_inline)) inline void remerge_group(const RemergeArgs& a, int64_t j, int64_t& up,
                                                         int64_t& down) {
    constexpr int ROWS = remerge_tile_rows(BITS);  // rows of a block: whole words
    constexpr int WORDS = ROWS * BITS / 32;        // words of a block, per column
    constexpr int MAXQ = (1 << BITS) - 1;
    const int64_t N = a.N;
    int32_t* sp = a.sum_p + j * N;
    int32_t* sm = a.sum_m + j * N;
    std::fill(sp, sp + N, 0);
    std::fill(sm, sm + N, 0);
    int n_up[8] = {}, n_down[8] = {};
    for (int64_t k0 = j * a.g; k0 < (j + 1) * a.g; k0 += ROWS) {
        const int64_t w0 = k0 / ROWS * WORDS;  // first word row of the block
        for (int64_t n0 = 0; n0 < N; n0 += 8) {
            // The block's words as eight bit streams of stride 8 (word x of column c at [x][c]).
            int32_t in[WORDS][8];
            uint32_t out[WORDS][8] = {};
            for (int x = 0; x < WORDS; ++x)
                for (int c = 0; c < 8; ++c) in[x][c] = a.qweight[(w0 + x) * N + n0 + c];
            int col_p[8] = {}, col_m[8] = {};
            for (int i = 0; i < ROWS; ++i) {
                const int64_t k = k0 + i, e = k * N + n0;  // e: a multiple of 8
                int q[8], p[8];
                for (int c = 0; c < 8; ++c) {
                    q[c] = static_cast<int>(gptq_stream_get(&in[0][c], 8, i, BITS));
                    p[c] = static_cast<int>(a.p_new[e + c]);
                }
                const unsigned flags = a.moved[e / 8];
                if (flags != 0) {
                    for (int c = 0; c < 8; ++c)
                        if ((flags >> c) & 1u) q[c] = remerge_base_code(q[c], product_old(a, k, n0 + c));
                }
                unsigned new_flags = 0;
                for (int c = 0; c < 8; ++c) {
                    const RemergedCode rc = remerge_step(q[c], p[c], a.t, MAXQ);
                    gptq_stream_put(&out[0][c], 8, i, BITS, static_cast<uint32_t>(rc.q_new));
                    new_flags |= static_cast<unsigned>(rc.m != 0) << c;
                    col_p[c] += p[c];
                    col_m[c] += rc.m;
                    n_up[c] += rc.m > 0;
                    n_down[c] += rc.m < 0;
                }
                a.moved_out[e / 8] = static_cast<uint8_t>(new_flags);
            }
            for (int c = 0; c < 8; ++c) {
                sp[n0 + c] += col_p[c];
                sm[n0 + c] += col_m[c];
            }
            for (int x = 0; x < WORDS; ++x)
                for (int c = 0; c < 8; ++c) a.qweight_out[(w0 + x) * N + n0 + c] = static_cast<int32_t>(out[x][c]);
        }
    }
    up = down = 0;
    for (int c = 0; c < 8; ++c) up += n_up[c], down += n_down[c];
}

// One instance per width, each compiled for the baseline ISA and AVX2 (cpu_simd.h).
LOTA_CPU_CLONES void remerge_group_2(const RemergeArgs& a, int64_t j, int64_t& u, int64_t& d) {
    remerge_group<2>(a, j, u, d);
}
LOTA_CPU_CLONES void remerge_group_3(const RemergeArgs& a, int64_t j, int64_t& u, int64_t& d) {
    remerge_group<3>(a, j, u, d);
}
LOTA_CPU_CLONES void remerge_group_4(const RemergeArgs& a, int64_t j, int64_t& u, int64_t& d) {
    remerge_group<4>(a, j, u, d);
}
LOTA_CPU_CLONES void remerge_group_8(const RemergeArgs& a, int64_t j, int64_t& u, int64_t& d) {
    remerge_group<8>(a, j, u, d);
}

void remerge_layer(void (*group)(const RemergeArgs&, int64_t, int64_t&, int64_t&), const RemergeArgs& a, int64_t K,
                   int64_t* counts) {
    const int64_t G = K / a.g;
    std::vector<int64_t> up(G), down(G);
    at::parallel_for(0, G, 1, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) group(a, j, up[j], down[j]);
    });
    counts[0] = counts[1] = 0;
    for (int64_t j = 0; j < G; ++j) counts[0] += up[j], counts[1] += down[j];
}

}  // namespace

void lota_remerge_cpu(const int32_t* qweight, const uint8_t* moved, const float* p_old, const int8_t* a_old,
                      const int8_t* b_old, int64_t r, const float* p_new, int32_t* qweight_out, uint8_t* moved_out,
                      int32_t* sum_p, int32_t* sum_m, int64_t* counts, int64_t K, int64_t N, int64_t g, int bits,
                      int t) {
    const RemergeArgs a{qweight, moved, p_old, a_old, b_old, r, p_new, qweight_out, moved_out, sum_p, sum_m, N, g, t};
    switch (bits) {
        case 2: remerge_layer(remerge_group_2, a, K, counts); break;
        case 3: remerge_layer(remerge_group_3, a, K, counts); break;
        case 4: remerge_layer(remerge_group_4, a, K, counts); break;
        case 8: remerge_layer(remerge_group_8, a, K, counts); break;
        default: break;
    }
}

}  // namespace lota::kernels
