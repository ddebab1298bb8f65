// Exact dequantizers for ggml block types; see gguf_dequant.h for the layouts. Plain loops: this is
// the reference, one block at a time, written from the layout descriptions.
#include "io/gguf_dequant.h"

#include <cstring>

#include "util/check.h"

// Each scaled value must be the float32-rounded product, then the float32-rounded sum, as in
// ggml's reference code; a fused multiply-add would change the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lota::io {
namespace {

constexpr int kQK = 32;    // elements per block of the legacy types
constexpr int kQKK = 256;  // elements per super-block of the K-quants

const GgmlTypeInfo kTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},      {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", 32, 18, true},  {GgmlType::Q4_1, "Q4_1", 32, 20, true},
    {GgmlType::Q5_0, "Q5_0", 32, 22, true},  {GgmlType::Q5_1, "Q5_1", 32, 24, true},
    {GgmlType::Q8_0, "Q8_0", 32, 34, true},  {GgmlType::Q8_1, "Q8_1", 32, 36, false},
    {GgmlType::Q2_K, "Q2_K", 256, 84, true}, {GgmlType::Q3_K, "Q3_K", 256, 110, true},
    {GgmlType::Q4_K, "Q4_K", 256, 144, true}, {GgmlType::Q5_K, "Q5_K", 256, 176, true},
    {GgmlType::Q6_K, "Q6_K", 256, 210, true}, {GgmlType::Q8_K, "Q8_K", 256, 292, false},
    {GgmlType::I8, "I8", 1, 1, false},       {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},     {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},     {GgmlType::BF16, "BF16", 1, 2, true},
};

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t load_u32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}
float load_half(const uint8_t* p) { return ggml_half_to_float(load_u16(p)); }
float bits_to_float(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Legacy 32-element blocks: 4 low bits from qs (nibble j%16, high half for j >= 16), an optional
// fifth bit from the 32-bit qh.
int q4_nibble(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4); }
int q5_value(const uint8_t* qs, uint32_t qh, int j) { return q4_nibble(qs, j) | static_cast<int>(((qh >> j) & 1u) << 4); }

void dequant_q4_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q4_nibble(b + 2, j) - 8);
}
void dequant_q4_1(const uint8_t* b, float* y) {
    const float d = load_half(b), m = load_half(b + 2);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q4_nibble(b + 4, j)) + m;
}
void dequant_q5_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    const uint32_t qh = load_u32(b + 2);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q5_value(b + 6, qh, j) - 16);
}
void dequant_q5_1(const uint8_t* b, float* y) {
    const float d = load_half(b), m = load_half(b + 2);
    const uint32_t qh = load_u32(b + 4);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(q5_value(b + 8, qh, j)) + m;
}
void dequant_q8_0(const uint8_t* b, float* y) {
    const float d = load_half(b);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Q2_K: element e = h·128 + s·32 + l (half h, shift s, lane l) is bits 2s..2s+1 of qs[h·32 + l];
// sub-block e/16 has scale (lo nibble) and min (hi nibble) from scales[e/16].
void dequant_q2_k(const uint8_t* b, float* y) {
    const uint8_t* scales = b;
    const uint8_t* qs = b + 16;
    const float d = load_half(b + 80), dmin = load_half(b + 82);
    for (int e = 0; e < kQKK; ++e) {
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int q = (qs[h * 32 + l] >> (2 * s)) & 3;
        const float dl = d * static_cast<float>(scales[e / 16] & 0x0F);
        const float ml = dmin * static_cast<float>(scales[e / 16] >> 4);
        y[e] = dl * static_cast<float>(q) - ml;
    }
}

// Q3_K: low 2 bits as in Q2_K; bit (e/32) of hmask[e%32] clear means subtract 4. The 16 6-bit
// scales: low nibble from scales[s%8] (hi nibble for s >= 8), high 2 bits from scales[8 + s%4] at
// bit 2·(s/4); stored with +32 bias.
void dequant_q3_k(const uint8_t* b, float* y) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* sc = b + 96;
    const float d = load_half(b + 108);
    for (int e = 0; e < kQKK; ++e) {
        const int s16 = e / 16;
        const int lo = s16 < 8 ? (sc[s16] & 0x0F) : (sc[s16 - 8] >> 4);
        const int hi = (sc[8 + s16 % 4] >> (2 * (s16 / 4))) & 3;
        const float dl = d * static_cast<float>((lo | (hi << 4)) - 32);
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int low = (qs[h * 32 + l] >> (2 * s)) & 3;
        const int high = ((hmask[l] >> (e / 32)) & 1) ? 0 : 4;
        y[e] = dl * static_cast<float>(low - high);
    }
}

// Q4_K/Q5_K 12-byte scales: 8 scales and 8 mins of 6 bits. For j < 4 they are the low 6 bits of
// bytes j and j+4; for j >= 4 the low (scale) / high (min) nibble of byte j+4 plus the top 2 bits
// of bytes j-4 / j.
void k_scale_min(const uint8_t* sc, int j, int* scale, int* min) {
    if (j < 4) {
        *scale = sc[j] & 0x3F;
        *min = sc[j + 4] & 0x3F;
    } else {
        *scale = (sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4);
        *min = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
}

// Q4_K: sub-block j (32 elements) = nibble (j%2) of qs[(j/2)·32 + l]; y = d·scale·q − dmin·min.
// Q5_K adds bit j of qh[l] as the fifth bit.
void dequant_q45_k(const uint8_t* b, float* y, bool five_bits) {
    const float d = load_half(b), dmin = load_half(b + 2);
    const uint8_t* sc = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = five_bits ? b + 48 : b + 16;
    for (int j = 0; j < 8; ++j) {
        int scale = 0, min = 0;
        k_scale_min(sc, j, &scale, &min);
        const float dl = d * static_cast<float>(scale);
        const float ml = dmin * static_cast<float>(min);
        for (int l = 0; l < 32; ++l) {
            int q = (qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0F;
            if (five_bits) q |= ((qh[l] >> j) & 1) << 4;
            y[j * 32 + l] = dl * static_cast<float>(q) - ml;
        }
    }
}

// Q6_K: element e = h·128 + s·32 + l: low nibble of ql[h·64 + (s%2)·32 + l] (high nibble for
// s >= 2), bits 2s..2s+1 of qh[h·32 + l] on top; sub-block e/16 has the int8 scale.
void dequant_q6_k(const uint8_t* b, float* y) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_half(b + 208);
    for (int e = 0; e < kQKK; ++e) {
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int low = (ql[h * 64 + (s % 2) * 32 + l] >> (4 * (s / 2))) & 0x0F;
        const int high = (qh[h * 32 + l] >> (2 * s)) & 3;
        const float dl = d * static_cast<float>(scales[e / 16]);
        y[e] = dl * static_cast<float>((low | (high << 4)) - 32);
    }
}

}  // namespace

const GgmlTypeInfo* ggml_type_find(uint32_t id) {
    for (const auto& row : kTypes)
        if (static_cast<uint32_t>(row.type) == id) return &row;
    return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
    const GgmlTypeInfo* info = ggml_type_find(static_cast<uint32_t>(type));
    LOTA_ASSERT(info != nullptr, "ggml type %u missing from the type table", static_cast<unsigned>(type));
    return *info;
}

std::string ggml_type_list_dequantizable() {
    std::string out;
    for (const auto& row : kTypes) {
        if (!row.can_dequantize) continue;
        if (!out.empty()) out += ", ";
        out += row.name;
    }
    return out;
}

float ggml_half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return bits_to_float(sign | 0x7F800000u | (mant << 13));  // inf / NaN
    if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return bits_to_float(sign);  // signed zero
    // Subnormal half: normalise the mantissa into a float32 normal number.
    int e = -1;
    do {
        ++e;
        mant <<= 1;
    } while ((mant & 0x400u) == 0);
    return bits_to_float(sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3FFu) << 13));
}

void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t n, float* dst, const std::string& context) {
    const GgmlTypeInfo& info = ggml_type_info(type);
    LOTA_CHECK(info.can_dequantize, "%s: cannot dequantize tensor type %s (supported: %s)", context.c_str(), info.name,
               ggml_type_list_dequantizable().c_str());
    LOTA_CHECK(n >= 0 && n % info.block_size == 0, "%s: %lld elements of type %s, expected a multiple of %u",
               context.c_str(), static_cast<long long>(n), info.name, info.block_size);
    const int64_t n_blocks = n / info.block_size;
    for (int64_t i = 0; i < n_blocks; ++i) {
        const uint8_t* b = src + i * info.type_size;
        float* y = dst + i * info.block_size;
        switch (type) {
            case GgmlType::F32: std::memcpy(y, b, 4); break;
            case GgmlType::F16: *y = load_half(b); break;
            case GgmlType::BF16: *y = bits_to_float(static_cast<uint32_t>(load_u16(b)) << 16); break;
            case GgmlType::Q4_0: dequant_q4_0(b, y); break;
            case GgmlType::Q4_1: dequant_q4_1(b, y); break;
            case GgmlType::Q5_0: dequant_q5_0(b, y); break;
            case GgmlType::Q5_1: dequant_q5_1(b, y); break;
            case GgmlType::Q8_0: dequant_q8_0(b, y); break;
            case GgmlType::Q2_K: dequant_q2_k(b, y); break;
            case GgmlType::Q3_K: dequant_q3_k(b, y); break;
            case GgmlType::Q4_K: dequant_q45_k(b, y, false); break;
            case GgmlType::Q5_K: dequant_q45_k(b, y, true); break;
            case GgmlType::Q6_K: dequant_q6_k(b, y); break;
            default: LOTA_ASSERT(false, "dequantizer missing for %s", info.name);
        }
    }
}

}  // namespace lota::io
