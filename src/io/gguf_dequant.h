// ggml tensor types and their exact dequantization to float32.
//
// Spec: ggml's block layouts (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md, "ggml_type",
// and ggml-common.h). A row of ne0 elements is ne0/block_size blocks of type_size bytes, little-endian:
//   F32   1 elem,   4 B  IEEE binary32          F16  1 elem, 2 B binary16     BF16 1 elem, 2 B bfloat16
//   Q4_0  32 elems, 18 B  f16 d, u8 qs[16]        y = d·(q − 8),   q = nibble j (lo: j<16, hi: j≥16)
//   Q4_1  32 elems, 20 B  f16 d, f16 m, qs[16]    y = d·q + m
//   Q5_0  32 elems, 22 B  f16 d, u32 qh, qs[16]   y = d·(q − 16),  q = nibble | bit j of qh << 4
//   Q5_1  32 elems, 24 B  f16 d, f16 m, qh, qs    y = d·q + m
//   Q8_0  32 elems, 34 B  f16 d, i8 qs[32]        y = d·q
//   Q2_K 256 elems, 84 B  u8 scales[16] (lo nibble scale, hi nibble min), qs[64] (2 bits), f16 d, f16 dmin
//   Q3_K 256 elems, 110 B hmask[32], qs[64] (2 bits), scales[12] (16 × 6-bit, −32), f16 d
//   Q4_K 256 elems, 144 B f16 d, f16 dmin, scales[12] (8 × 6-bit scale + 8 × 6-bit min), qs[128]
//   Q5_K 256 elems, 176 B f16 d, f16 dmin, scales[12], qh[32], qs[128]
//   Q6_K 256 elems, 210 B ql[128], qh[64], i8 scales[16], f16 d           y = d·scale·(q − 32)
// Every product is rounded to float32 before any sum (no fused multiply-add), matching ggml's
// reference dequantizers and gguf-py's numpy ones bit for bit. Other types (IQ*, I8..I64, F64,
// Q8_1, Q8_K) are known for their sizes only; dequantizing them throws.
#pragma once

#include <cstdint>
#include <string>

namespace lota::io {

/// ggml's type ids as stored in GGUF tensor infos.
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
};

struct GgmlTypeInfo {
    GgmlType type;
    const char* name;     ///< ggml's name, e.g. "Q4_1"
    uint32_t block_size;  ///< elements per block
    uint32_t type_size;   ///< bytes per block
    bool can_dequantize;  ///< ggml_dequantize supports it
};

/// The row of type id `id`, or nullptr when lota does not know that id.
const GgmlTypeInfo* ggml_type_find(uint32_t id);
/// The row of a known type.
const GgmlTypeInfo& ggml_type_info(GgmlType type);
/// "F32, F16, ..." (the types ggml_dequantize supports), for error messages.
std::string ggml_type_list_dequantizable();

/// Exact binary16 -> binary32 (subnormals, infinities and NaN payloads preserved).
float ggml_half_to_float(uint16_t h);

/// Dequantizes `n` elements of `type` from `src` (n / block_size · type_size bytes) into `dst`.
/// Throws lota::Error when `n` is not a multiple of the block size or the type is unsupported;
/// `context` (file and tensor name) starts the message.
void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t n, float* dst, const std::string& context);

}  // namespace lota::io
