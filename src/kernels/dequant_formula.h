// The GPTQ bit stream and the dequantization formula as scalar inline functions, shared by the
// CPU reference loops, the CUDA kernel (compiled by nvcc, no torch) and src/quant/pack.cpp, so
// the layout and the formula are written exactly once. No tensors, no checks here.
//
// Note [GPTQ bit stream]: GPTQModel/AutoGPTQ "gptq" packing stores b-bit codes in int32 words.
// Along the packed axis (K for qweight, N for qzeros) the words of one column/row form a
// little-endian bit stream and code i occupies bits [b·i, b·i + b). For b = 2, 4, 8 no code
// crosses a word; for b = 3 every 32 codes fill three words and codes 10 and 21 straddle
// word boundaries (bits 30-32 and 63-65), exactly AutoGPTQ's 3-bit layout.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LOTA_HD __host__ __device__ __forceinline__
#else
#define LOTA_HD inline
#endif

namespace lota::kernels {

/// Code i of a bit stream whose word w is at `words[w * stride]` (stride = row length for
/// qweight packed along K, 1 for a qzeros row packed along N). Reads one word past the code's
/// first word only when the code straddles.
LOTA_HD uint32_t gptq_stream_get(const int32_t* words, int64_t stride, int64_t i, int bits) {
    const int64_t bit = i * bits;
    const int64_t w = bit >> 5;
    const int shift = static_cast<int>(bit & 31);
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t v = static_cast<uint32_t>(words[w * stride]) >> shift;
    if (shift + bits > 32) v |= static_cast<uint32_t>(words[(w + 1) * stride]) << (32 - shift);
    return v & mask;
}

/// ORs code `q` (already < 2^bits) into position i of a zero-initialised bit stream.
LOTA_HD void gptq_stream_put(uint32_t* words, int64_t stride, int64_t i, int bits, uint32_t q) {
    const int64_t bit = i * bits;
    const int64_t w = bit >> 5;
    const int shift = static_cast<int>(bit & 31);
    words[w * stride] |= q << shift;
    if (shift + bits > 32) words[(w + 1) * stride] |= q >> (32 - shift);
}

/// W = S·(Q − Z + F) in float32: Q − Z is exact, then one rounding for + F and one for · S.
/// Pass f = 0 when there is no LoTA offset (adding 0.0f is exact, so both paths agree).
LOTA_HD float dequant_value(int32_t q, int32_t z, float s, float f) {
    return s * (static_cast<float>(q - z) + f);
}

}  // namespace lota::kernels
