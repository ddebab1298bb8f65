// Packing and unpacking of GPTQ codes and zero points, and the v1 <-> v2 qzeros conversion
// (see pack.h). Plain CPU loops over the shared bit-stream helpers; tensors on other devices are
// copied to the CPU and back (packing is not on a hot path; dequantization is kernels/dequant.h).
#include "quant/pack.h"

#include <ATen/ATen.h>

#include "kernels/dequant_formula.h"
#include "quant/quantized_weight.h"
#include "quant/quantizer.h"
#include "util/check.h"

namespace lota::quant {
namespace {

// Packs int values [R, C] into int32 words along `dim` (0: along rows, 1: along columns).
at::Tensor pack_stream(const at::Tensor& values, int bits, int dim, const char* what) {
    check_bits(bits, what);
    LOTA_CHECK(values.dim() == 2, "%s: expected a 2-D tensor, got shape %s", what,
               shape_str(values.sizes().vec()).c_str());
    LOTA_CHECK(!at::isFloatingType(values.scalar_type()) && values.scalar_type() != at::kBool,
               "%s: expected an integer tensor, got %s", what, c10::toString(values.scalar_type()));
    const int64_t R = values.size(0), C = values.size(1);
    const int64_t L = dim == 0 ? R : C;
    LOTA_CHECK(L * bits % 32 == 0, "%s: %lld values along the packed axis times %d bits is not a multiple of 32",
               what, (long long)L, bits);
    const at::Tensor v = values.to(at::kCPU, at::kLong).contiguous();
    const int64_t maxq = (1 << bits) - 1;
    LOTA_CHECK(v.numel() == 0 || (v.min().item<int64_t>() >= 0 && v.max().item<int64_t>() <= maxq),
               "%s: values must lie in [0, %lld] for %d bits, got range [%lld, %lld]", what, (long long)maxq, bits,
               (long long)v.min().item<int64_t>(), (long long)v.max().item<int64_t>());
    const int64_t words = L * bits / 32;
    at::Tensor out = at::zeros(dim == 0 ? std::vector<int64_t>{words, C} : std::vector<int64_t>{R, words}, at::kInt);
    auto* o = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
    const int64_t* p = v.data_ptr<int64_t>();
    for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
            const uint32_t q = static_cast<uint32_t>(p[r * C + c]);
            if (dim == 0)
                kernels::gptq_stream_put(o + c, C, r, bits, q);
            else
                kernels::gptq_stream_put(o + r * words, 1, c, bits, q);
        }
    return out.to(values.device());
}

// Inverse of pack_stream: int32 words -> int32 values [R, C].
at::Tensor unpack_stream(const at::Tensor& words_in, int bits, int dim, const char* what) {
    check_bits(bits, what);
    LOTA_CHECK(words_in.dim() == 2 && words_in.scalar_type() == at::kInt,
               "%s: expected an int32 2-D tensor, got %s %s", what, c10::toString(words_in.scalar_type()),
               shape_str(words_in.sizes().vec()).c_str());
    const at::Tensor w = words_in.to(at::kCPU).contiguous();
    const int64_t WR = w.size(0), WC = w.size(1);
    const int64_t R = dim == 0 ? WR * 32 / bits : WR, C = dim == 1 ? WC * 32 / bits : WC;
    at::Tensor out = at::empty({R, C}, at::kInt);
    const int32_t* p = w.data_ptr<int32_t>();
    int32_t* o = out.data_ptr<int32_t>();
    for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c)
            o[r * C + c] = static_cast<int32_t>(dim == 0 ? kernels::gptq_stream_get(p + c, WC, r, bits)
                                                         : kernels::gptq_stream_get(p + r * WC, 1, c, bits));
    return out.to(words_in.device());
}

at::Tensor add_word_constants(const at::Tensor& qzeros, int bits, bool add, const char* what) {
    check_bits(bits, what);
    LOTA_CHECK(qzeros.dim() == 2 && qzeros.scalar_type() == at::kInt, "%s: expected int32 [G, N*b/32], got %s %s",
               what, c10::toString(qzeros.scalar_type()), shape_str(qzeros.sizes().vec()).c_str());
    at::Tensor w = qzeros.to(at::kCPU).contiguous().clone();
    auto* p = reinterpret_cast<uint32_t*>(w.data_ptr<int32_t>());
    const int64_t R = w.size(0), C = w.size(1);
    for (int64_t c = 0; c < C; ++c) {
        const uint32_t k = qzeros_v1_word_constant(c, bits);
        for (int64_t r = 0; r < R; ++r) p[r * C + c] = add ? p[r * C + c] + k : p[r * C + c] - k;  // mod 2^32
    }
    return w.to(qzeros.device());
}

}  // namespace

// Note [byte view of packed codes]
// For b = 2, 4, 8 a word holds 32/b whole codes: code i of a column sits in word i / (32/b) at bit
// b·(i mod 32/b). On a little-endian machine (static_assert below) byte j of a word therefore holds
// the codes per·j .. per·j + per − 1 (per = 8/b), code per·j + c at bit b·c of the byte. qweight int32
// [W, N] viewed as bytes [W, N, 4] becomes the codes [W, 4, per, N] by one transpose and per
// shifts/masks of byte tensors: a few cheap tensor ops on the tensor's own device, no host round trip
// and no sync. Training re-packs every adapted layer at every step, so this is on the hot path.
// 3 bits (codes straddle words) goes through the scalar stream above.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the byte view of packed codes assumes little endian");

namespace {

void check_whole_code_bits(int bits, const char* what) {
    LOTA_CHECK(bits == 2 || bits == 4 || bits == 8, "%s: expected 2, 4 or 8 bits, got %d", what, bits);
}

}  // namespace

at::Tensor pack_codes_unchecked(const at::Tensor& codes, int bits) {
    if (bits == 3) return pack_stream(codes, bits, 0, "pack_codes");
    check_whole_code_bits(bits, "pack_codes");
    LOTA_CHECK(codes.dim() == 2 && !at::isFloatingType(codes.scalar_type()) && codes.scalar_type() != at::kBool,
               "pack_codes: expected a 2-D integer tensor, got %s %s", c10::toString(codes.scalar_type()),
               shape_str(codes.sizes().vec()).c_str());
    const int64_t per = 8 / bits, R = codes.size(0), C = codes.size(1);
    LOTA_CHECK(R * bits % 32 == 0, "pack_codes: %lld rows times %d bits is not a multiple of 32", (long long)R, bits);
    const int64_t W = R * bits / 32;
    const at::Tensor c = codes.to(at::kByte).contiguous().view({W, 4, per, C});
    at::Tensor bytes = c.select(2, 0).clone(at::MemoryFormat::Contiguous);  // [W, 4, C]
    for (int64_t j = 1; j < per; ++j) bytes.bitwise_or_(c.select(2, j).bitwise_left_shift(j * bits));
    // reshape, not view: contiguous() may leave odd strides on size-1 dimensions, which view(kInt) rejects.
    return bytes.permute({0, 2, 1}).contiguous().reshape({W, C * 4}).view(at::kInt);
}

at::Tensor pack_codes(const at::Tensor& codes, int bits) {
    if (bits == 3) return pack_stream(codes, bits, 0, "pack_codes");
    check_bits(bits, "pack_codes");
    LOTA_CHECK(codes.dim() == 2 && !at::isFloatingType(codes.scalar_type()) && codes.scalar_type() != at::kBool,
               "pack_codes: expected a 2-D integer tensor, got %s %s", c10::toString(codes.scalar_type()),
               shape_str(codes.sizes().vec()).c_str());
    const int64_t maxq = (1 << bits) - 1;
    if (codes.numel() > 0) {
        const int64_t lo = codes.min().item<int64_t>(), hi = codes.max().item<int64_t>();
        LOTA_CHECK(lo >= 0 && hi <= maxq, "pack_codes: values must lie in [0, %lld] for %d bits, got range [%lld, %lld]",
                   (long long)maxq, bits, (long long)lo, (long long)hi);
    }
    return pack_codes_unchecked(codes, bits);
}

at::Tensor unpack_codes(const QuantizedWeight& qw) {
    if (qw.bits == 3) return unpack_stream(qw.qweight, qw.bits, 0, "unpack_codes").to(at::kByte);
    check_whole_code_bits(qw.bits, "unpack_codes");
    const at::Tensor& w = qw.qweight;
    LOTA_CHECK(w.dim() == 2 && w.scalar_type() == at::kInt, "unpack_codes: expected an int32 2-D tensor, got %s %s",
               c10::toString(w.scalar_type()), shape_str(w.sizes().vec()).c_str());
    const int64_t per = 8 / qw.bits, W = w.size(0), C = w.size(1);
    const at::Tensor bytes = w.contiguous().view(at::kByte).view({W, C, 4}).permute({0, 2, 1});  // [W, 4, C]
    at::Tensor out = at::empty({W, 4, per, C}, bytes.options());
    for (int64_t j = 0; j < per; ++j) {
        at::Tensor dst = out.select(2, j);
        const at::Tensor src = j == 0 ? bytes : bytes.bitwise_right_shift(j * qw.bits);
        if (j == per - 1)
            dst.copy_(src);  // the top field: the shift already cleared the bits above it
        else
            at::bitwise_and_out(dst, src, (1 << qw.bits) - 1);
    }
    return out.view({W * 4 * per, C});
}

at::Tensor pack_zeros(const at::Tensor& zeros, int bits) { return pack_stream(zeros, bits, 1, "pack_zeros"); }

at::Tensor unpack_zeros(const at::Tensor& qzeros, int bits) { return unpack_stream(qzeros, bits, 1, "unpack_zeros"); }

uint32_t qzeros_v1_word_constant(int64_t w, int bits) {
    uint32_t k = 0;
    const int64_t lo = 32 * w, hi = 32 * w + 32;
    for (int64_t i = (lo + bits - 1) / bits; i * bits < hi; ++i) k |= 1u << (i * bits - lo);
    return k;
}

at::Tensor qzeros_v1_to_v2(const at::Tensor& qzeros_v1, int bits) {
    return add_word_constants(qzeros_v1, bits, true, "qzeros_v1_to_v2");
}

at::Tensor qzeros_v2_to_v1(const at::Tensor& qzeros_v2, int bits) {
    return add_word_constants(qzeros_v2, bits, false, "qzeros_v2_to_v1");
}

}  // namespace lota::quant

namespace lota::quant {

QuantizedWeight quantized_weight_make(const at::Tensor& Q, const at::Tensor& scales, const at::Tensor& zeros,
                                      const at::Tensor& g_idx, int bits, int group_size) {
    LOTA_CHECK(Q.dim() == 2, "quantized_weight_make: expected codes [N, K], got %s",
               shape_str(Q.sizes().vec()).c_str());
    QuantizedWeight qw;
    qw.bits = bits;
    qw.group_size = group_size;
    qw.out_features = Q.size(0);
    qw.in_features = Q.size(1);
    check_bits(bits, "quantized_weight_make");
    const int64_t maxq = (1 << bits) - 1;
    if (Q.numel() > 0) {  // checked before the narrowing to uint8, a quarter of int32's bytes to transpose
        const auto [lo, hi] = at::aminmax(Q);
        const double l = lo.item<double>(), h = hi.item<double>();
        LOTA_CHECK(l >= 0 && h <= (double)maxq, "quantized_weight_make: codes must lie in [0, %lld] for %d bits, got "
                   "range [%g, %g]", (long long)maxq, bits, l, h);
    }
    // Packed where the codes are (on a GPU: no host copy of the unpacked codes), returned on the CPU.
    qw.qweight = pack_codes_unchecked(Q.to(at::kByte).t().contiguous(), bits).to(at::kCPU);
    qw.scales = scales.to(at::kCPU, at::kHalf).contiguous();
    qw.zeros = zeros.to(at::kCPU, at::kInt).contiguous();
    qw.g_idx = g_idx.to(at::kCPU, at::kInt).contiguous();
    quantized_weight_check(qw, "quantized_weight_make");
    return qw;
}

at::Tensor qzeros_v1_to_v2_per_field(const at::Tensor& qzeros_v1, int bits) {
    const at::Tensor z = unpack_stream(qzeros_v1, bits, 1, "qzeros_v1_to_v2_per_field");
    return pack_stream(z.add(1).bitwise_and((1 << bits) - 1), bits, 1, "qzeros_v1_to_v2_per_field");
}

at::Tensor qzeros_v2_to_v1_per_field(const at::Tensor& qzeros_v2, int bits) {
    const at::Tensor z = unpack_stream(qzeros_v2, bits, 1, "qzeros_v2_to_v1_per_field");
    return pack_stream(z.add((1 << bits) - 1).bitwise_and((1 << bits) - 1), bits, 1, "qzeros_v2_to_v1_per_field");
}

}  // namespace lota::quant
