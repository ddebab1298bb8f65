// The per-weight step of the fused LoTA re-merge as scalar inline functions, shared by the CUDA
// kernel (lota_remerge_cuda.cu), the CPU kernel (lota_remerge_cpu.cpp) and a CPU test that runs the
// CUDA kernel's row step over whole layers against the tensor-op re-merge (quant/lota_remerge.cpp),
// so the logic the GPU runs is checked on every CI machine.
// No tensors, no CUDA headers.
#pragma once

#include <cstdint>

#include "kernels/dequant_formula.h"  // LOTA_HD, gptq_stream_get / _put

namespace lota::kernels {

/// The integer held by a float16 (its raw bits), for finite values: exact for every integer a float16
/// holds, which includes the |v| ≤ 2048 of a ternary product of rank ≤ 2048 (Note [exact ternary
/// GEMM] in quant/lota.cpp); fractions truncate toward zero.
LOTA_HD int half_bits_to_int(uint16_t h) {
    const int e = (h >> 10) & 31;  // biased exponent; value = 1.m · 2^(e − 15)
    if (e < 15) return 0;          // |v| < 1 (zero and subnormals included)
    const int f = 1024 | (h & 1023);  // the significand as an integer: value = f · 2^(e − 25)
    const int mag = e <= 25 ? f >> (25 - e) : f << (e - 25);
    return (h & 0x8000) ? -mag : mag;
}

/// One weight of the re-merge (DESIGN §1 with Note [merged codes and markers]): from its merged code
/// Q', its moved flag and the exact products P_old (read only when moved) and P of the new adapter,
///   Q = Q' − [moved]·sign(P_old),  s = [P > t] − [P < −t],  Q'_new = clamp(Q + s, 0, maxq),  M = Q'_new − Q.
/// In two parts: remerge_base_code for a moved weight, then remerge_step for every weight.
struct RemergedCode {
    int q_new;  ///< Q'_new
    int m;      ///< M ∈ {−1, 0, 1}
};
/// Q of a weight whose code moved (its M was sign(P_old) ≠ 0).
LOTA_HD int remerge_base_code(int q_merged, int p_old) { return q_merged - (p_old > 0 ? 1 : -1); }
/// Q'_new and M from Q and the new product P.
LOTA_HD RemergedCode remerge_step(int q, int p, int t, int maxq) {
    const int s = p > t ? 1 : (p < -t ? -1 : 0);
    const int qs = q + s;
    const int qn = qs < 0 ? 0 : (qs > maxq ? maxq : qs);
    return {qn, qn - q};
}

/// Rows of a tile of packed codes: whole words, 32/bits rows in one word for 2, 4 and 8 bits, 32 rows in
/// three words for 3 bits (whose codes straddle words, Note [GPTQ bit stream] in dequant_formula.h).
LOTA_HD constexpr int remerge_tile_rows(int bits) { return bits == 3 ? 32 : 32 / bits; }

/// Row i (0 ≤ i < remerge_tile_rows(BITS)) of 8 consecutive columns in a tile of packed words held as
/// eight bit streams of stride 8 (word x of column c at words[8x + c], gptq_stream_get), DESIGN §1
/// with Note [merged codes and markers]: per column c
///   Q = code i of column c − [flags bit c]·sign(p_old[c]),  s = [P > t] − [P < −t]  (P = p_new[c]),
///   Q'_new = clamp(Q + s, 0, maxq), M = Q'_new − Q;
/// puts Q'_new into new_words, adds P and M to the column sums, counts M = ±1, returns the new flag
/// byte ([M ≠ 0] at bit c). p_old may be null when no flag is set.
template <int BITS>
LOTA_HD unsigned remerge_row8(int i, const int32_t* words, unsigned flags, const uint16_t* p_old,
                              const uint16_t* p_new, int t, uint32_t* new_words, int* sum_p, int* sum_m,
                              unsigned& up, unsigned& down) {
    constexpr int MAXQ = (1 << BITS) - 1;
    unsigned new_flags = 0;
#if defined(__CUDACC__)
#pragma unroll
#endif
    for (int c = 0; c < 8; ++c) {
        int q = static_cast<int>(gptq_stream_get(words + c, 8, i, BITS));
        if ((flags >> c) & 1u) q = remerge_base_code(q, half_bits_to_int(p_old[c]));
        const int p = half_bits_to_int(p_new[c]);
        const RemergedCode rc = remerge_step(q, p, t, MAXQ);
        const int m = rc.m;
        gptq_stream_put(new_words + c, 8, i, BITS, static_cast<uint32_t>(rc.q_new));
        new_flags |= static_cast<unsigned>(m != 0) << c;
        sum_p[c] += p;
        sum_m[c] += m;
        up += m > 0;
        down += m < 0;
    }
    return new_flags;
}

/// remerge_row8 with the bit width chosen at run time (2, 3, 4 or 8; anything else returns 0 and does
/// nothing): for host code that loops over layers of any width.
inline unsigned remerge_row8_for_bits(int bits, int i, const int32_t* words, unsigned flags, const uint16_t* p_old,
                                      const uint16_t* p_new, int t, uint32_t* new_words, int* sum_p, int* sum_m,
                                      unsigned& up, unsigned& down) {
    switch (bits) {
        case 2: return remerge_row8<2>(i, words, flags, p_old, p_new, t, new_words, sum_p, sum_m, up, down);
        case 3: return remerge_row8<3>(i, words, flags, p_old, p_new, t, new_words, sum_p, sum_m, up, down);
        case 4: return remerge_row8<4>(i, words, flags, p_old, p_new, t, new_words, sum_p, sum_m, up, down);
        case 8: return remerge_row8<8>(i, words, flags, p_old, p_new, t, new_words, sum_p, sum_m, up, down);
        default: return 0;
    }
}

}  // namespace lota::kernels
