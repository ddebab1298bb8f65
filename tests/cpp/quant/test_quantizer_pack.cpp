// Tests for the grid formula (quantizer.h), packing (pack.h) and QuantizedWeight helpers:
// hand-computed grids, bit layout, v1 whole-word arithmetic and exact round trips.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "kernels/dequant_formula.h"
#include "quant/gptq_tensors.h"
#include "quant/pack.h"
#include "quant/quantized_weight.h"
#include "quant/quantizer.h"
#include "util/check.h"

using namespace lota::quant;

namespace {

at::Tensor row(std::vector<float> v) { return at::tensor(v, at::kFloat).unsqueeze(0); }

std::vector<int64_t> as_vec(const at::Tensor& t) {
    const at::Tensor c = t.to(at::kLong).flatten().contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// A random QuantizedWeight whose zero points include 0 and maxq.
QuantizedWeight random_qw(int bits, int group_size, int64_t K, int64_t N, uint64_t seed, bool desc_act = false) {
    at::manual_seed(seed);
    const int maxq = (1 << bits) - 1;
    const int64_t G = group_size == -1 ? 1 : K / group_size;
    const at::Tensor Q = at::randint(0, maxq + 1, {N, K}, at::kLong);
    at::Tensor Z = at::randint(0, maxq + 1, {G, N}, at::kLong);
    Z.index_put_({0, at::indexing::Slice(0, N, 2)}, 0);  // Z = 0 at every other column: borrows
    Z.index_put_({G - 1, at::indexing::Slice(1, N, 3)}, maxq);
    const at::Tensor S = at::rand({G, N}, at::kFloat) * 0.1 + 0.001;
    at::Tensor g_idx = at::arange(K, at::kLong).div(group_size == -1 ? K : group_size, "floor");
    if (desc_act) g_idx = g_idx.index_select(0, at::randperm(K, at::kLong));
    return quantized_weight_make(Q, S, Z, g_idx, bits, group_size);
}

}  // namespace

TEST(Quantizer, HandComputedAsymmetric2Bit) {
    // Row 0: range [-1, 2] -> S = 1, Z = 1; 0.5 rounds half to even (0) -> code 1.
    // Row 1: all >= 0 -> xmin = 0, S = fp16(1/3) = 0.333251953125, Z = 0.
    // Row 2: all zero -> [-1, 1], S = fp16(2/3) = 0.66650390625, Z = round(1.50037) = 2.
    // Row 3: all <= 0 -> S = fp16(4/3) = 1.3330078125, Z = round(3.00073) = 3 = maxq.
    const at::Tensor x = at::cat({row({-1, 0, 0.5, 2}), row({0.25, 0.5, 0.75, 1}), row({0, 0, 0, 0}),
                                  row({-4, -2, -1, 0})});
    const GridParams p = grid_params(x, 2, false);
    EXPECT_EQ(as_vec(p.zero), (std::vector<int64_t>{1, 0, 2, 3}));
    EXPECT_FLOAT_EQ(p.scale[0].item<float>(), 1.0f);
    EXPECT_EQ(p.scale[1].item<float>(), 0.333251953125f);
    EXPECT_EQ(p.scale[2].item<float>(), 0.66650390625f);
    EXPECT_EQ(p.scale[3].item<float>(), 1.3330078125f);
    const at::Tensor Q = quantize_codes(x, p.scale, p.zero, 3);
    EXPECT_EQ(as_vec(Q), (std::vector<int64_t>{0, 1, 1, 3, 1, 2, 2, 3, 2, 2, 2, 2, 0, 1, 2, 3}));
    const at::Tensor W = quantize(x, p.scale, p.zero, 3);
    EXPECT_EQ(W[0][3].item<float>(), 2.0f);
    EXPECT_EQ(W[1][1].item<float>(), 2 * 0.333251953125f);
}

TEST(Quantizer, HandComputedSymmetric4Bit) {
    // max|x| = 1 -> S = fp16(2/15) = 0.13330078125, Z = 8; -1/S = -7.502 -> -8 -> 0; 0.5/S = 3.751 -> 4 -> 12.
    const GridParams p = grid_params(row({-1, 0.5}), 4, true);
    EXPECT_EQ(p.zero.item<float>(), 8.0f);
    EXPECT_EQ(p.scale.item<float>(), 0.13330078125f);
    EXPECT_EQ(as_vec(quantize_codes(row({-1, 0.5}), p.scale, p.zero, 15)), (std::vector<int64_t>{0, 12}));
}

TEST(Pack, WordConstantsMatchGptqModel) {
    EXPECT_EQ(qzeros_v1_word_constant(0, 2), 0x55555555u);
    EXPECT_EQ(qzeros_v1_word_constant(5, 4), 0x11111111u);
    EXPECT_EQ(qzeros_v1_word_constant(1, 8), 0x01010101u);
    EXPECT_EQ(qzeros_v1_word_constant(0, 3), 0x49249249u);
    EXPECT_EQ(qzeros_v1_word_constant(1, 3), 0x92492492u);
    EXPECT_EQ(qzeros_v1_word_constant(2, 3), 0x24924924u);
    EXPECT_EQ(qzeros_v1_word_constant(3, 3), 0x49249249u);
}

TEST(Pack, BitLayout4And3Bit) {
    // 4 bits: codes 1..8 along K in one word -> 0x87654321.
    const at::Tensor c4 = at::arange(1, 9, at::kLong).unsqueeze(1);
    EXPECT_EQ(pack_codes(c4, 4)[0][0].item<int32_t>(), static_cast<int32_t>(0x87654321u));
    // 3 bits: 32 codes = 96-bit little-endian stream; code 10 straddles words 0/1, code 21 words 1/2.
    at::Tensor c3 = at::zeros({32, 1}, at::kLong);
    c3[10][0] = 5;  // 0b101: bits 30, 32
    c3[21][0] = 6;  // 0b110: bits 64, 65 (bit 63 = 0)
    c3[31][0] = 7;  // bits 93..95
    const at::Tensor w = pack_codes(c3, 3);
    EXPECT_EQ(static_cast<uint32_t>(w[0][0].item<int32_t>()), 1u << 30);
    EXPECT_EQ(static_cast<uint32_t>(w[1][0].item<int32_t>()), 1u);
    EXPECT_EQ(static_cast<uint32_t>(w[2][0].item<int32_t>()), 0x3u | (7u << 29));
}

TEST(Pack, V1WholeWordBorrowFromZeroPointZero) {
    // 4-bit zeros along N: [0, 5, 15, 0, 0, 0, 0, 0] -> v2 word 0x00000F50;
    // v1 = 0x00000F50 − 0x11111111 mod 2^32 = 0xEEEEFE3F (Z = 0 borrows from the field above).
    const at::Tensor Z = at::tensor(std::vector<int64_t>{0, 5, 15, 0, 0, 0, 0, 0}).unsqueeze(0);
    const at::Tensor v2 = pack_zeros(Z, 4);
    EXPECT_EQ(static_cast<uint32_t>(v2.item<int32_t>()), 0x00000F50u);
    const at::Tensor v1 = qzeros_v2_to_v1(v2, 4);
    EXPECT_EQ(static_cast<uint32_t>(v1.item<int32_t>()), 0xEEEEFE3Fu);
    EXPECT_EQ(as_vec(unpack_zeros(qzeros_v1_to_v2(v1, 4), 4)), as_vec(Z));
    // A field-by-field "+1" reader gets field 1 wrong (3 + 1 = 4, not 5): the reason for whole words.
    EXPECT_EQ(((0xEEEEFE3Fu >> 4) & 0xF) + 1, 4u);
}

TEST(Pack, V1ThreeBitPerFieldAndWholeWordDiffer) {
    // 3-bit zeros along N (32 fields = 3 words): Z = 4 (0b100) everywhere. Per field, every field holds
    // 3 (0b011). Whole word, the low parts of the straddling fields 10 (bits 30..32) and 21 (bits 63..65)
    // are 0 and their borrows leave the word and are dropped: field 10 holds 0b111, field 21 0b101.
    const at::Tensor Z = at::full({1, 32}, 4, at::kLong);
    const at::Tensor v2 = pack_zeros(Z, 3);
    const at::Tensor field = qzeros_v2_to_v1_per_field(v2, 3), word = qzeros_v2_to_v1(v2, 3);
    EXPECT_EQ(as_vec(unpack_zeros(field, 3)), std::vector<int64_t>(32, 3));
    std::vector<int64_t> want(32, 3);
    want[10] = 7;
    want[21] = 5;
    EXPECT_EQ(as_vec(unpack_zeros(word, 3)), want);
    EXPECT_EQ(as_vec(unpack_zeros(qzeros_v1_to_v2_per_field(field, 3), 3)), as_vec(Z));
    EXPECT_EQ(as_vec(unpack_zeros(qzeros_v1_to_v2(word, 3), 3)), as_vec(Z));
    // Every Z in [0, 7], Z = 0 included (its field holds 7, no borrow), round-trips per field.
    const at::Tensor all = at::arange(32, at::kLong).remainder(8).unsqueeze(0);
    const at::Tensor f = qzeros_v2_to_v1_per_field(pack_zeros(all, 3), 3);
    EXPECT_EQ(as_vec(unpack_zeros(f, 3)), as_vec(all.add(7).remainder(8)));
    EXPECT_EQ(as_vec(unpack_zeros(qzeros_v1_to_v2_per_field(f, 3), 3)), as_vec(all));
}

TEST(Pack, ThreeBitV1FileReadByRecordedOrDetectedPacking) {
    QuantizedWeight qw = random_qw(3, 32, 64, 32, 5, false);
    lota::io::GptqConfig c;
    c.bits = 3;
    c.group_size = 32;
    const lota::io::GptqLinearTensors t = gptq_tensors_from_quantized_weight(qw, "gptq");  // per field
    EXPECT_TRUE(at::equal(t.qzeros, qzeros_v2_to_v1_per_field(pack_zeros(qw.zeros, 3), 3)));
    c.qzeros_3bit = lota::io::Qzeros3Bit::PER_FIELD;
    EXPECT_TRUE(at::equal(quantized_weight_from_gptq(t, c).zeros, qw.zeros));
    c.qzeros_3bit = lota::io::Qzeros3Bit::WHOLE_WORD;  // the other reading gives other zero points
    EXPECT_FALSE(at::equal(quantized_weight_from_gptq(t, c).zeros, qw.zeros));
    c.qzeros_3bit = lota::io::Qzeros3Bit::UNSTATED;  // asymmetric, not said: per field
    EXPECT_TRUE(at::equal(quantized_weight_from_gptq(t, c).zeros, qw.zeros));
    // Symmetric, not said: the reading that gives Z = 4 everywhere, for either packing.
    qw.zeros = at::full_like(qw.zeros, 4);
    c.sym = true;
    lota::io::GptqLinearTensors w = t;
    w.qzeros = qzeros_v2_to_v1(pack_zeros(qw.zeros, 3), 3);
    EXPECT_TRUE(at::equal(quantized_weight_from_gptq(w, c).zeros, qw.zeros));
    w.qzeros = qzeros_v2_to_v1_per_field(pack_zeros(qw.zeros, 3), 3);
    EXPECT_TRUE(at::equal(quantized_weight_from_gptq(w, c).zeros, qw.zeros));
}

TEST(Pack, ByteViewMatchesTheBitStream) {
    // pack_codes/unpack_codes use byte views for 2, 4 and 8 bits (Note [byte view of packed codes]);
    // every code must sit where the scalar bit-stream reader (the dequant kernels' spec) finds it.
    at::manual_seed(17);
    for (const int bits : {2, 4, 8}) {
        const int64_t K = 64, N = 5;
        const at::Tensor Q = at::randint(0, 1 << bits, {K, N}, at::kLong);
        const at::Tensor W = pack_codes(Q, bits);
        ASSERT_EQ(W.sizes().vec(), (std::vector<int64_t>{K * bits / 32, N}));
        const int32_t* w = W.data_ptr<int32_t>();
        for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n)
                ASSERT_EQ(lota::kernels::gptq_stream_get(w + n, N, k, bits), (uint32_t)Q[k][n].item<int64_t>())
                    << "bits " << bits << " k " << k << " n " << n;
        QuantizedWeight qw;
        qw.bits = bits;
        qw.qweight = W;
        EXPECT_TRUE(at::equal(unpack_codes(qw).to(at::kLong), Q)) << "bits " << bits;
        EXPECT_TRUE(at::equal(pack_codes_unchecked(Q.to(at::kByte).t().contiguous().t(), bits), W))
            << "non-contiguous uint8 codes, bits " << bits;
    }
}

class PackRoundTrip : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(PackRoundTrip, CodesZerosAndDequantAreExact) {
    const auto [bits, group_size] = GetParam();
    const int64_t K = 256, N = 96;
    for (const bool desc_act : {false, true}) {
        const QuantizedWeight qw = random_qw(bits, group_size, K, N, 1000 + bits * 7 + group_size, desc_act);
        const at::Tensor codes = unpack_codes(qw);
        ASSERT_EQ(codes.sizes().vec(), (std::vector<int64_t>{K, N}));
        EXPECT_TRUE(at::equal(pack_codes(codes, bits), qw.qweight));
        for (const char* fmt : {"gptq", "gptq_v2"}) {
            const lota::io::GptqLinearTensors t = gptq_tensors_from_quantized_weight(qw, fmt);
            lota::io::GptqConfig c;
            c.bits = bits;
            c.group_size = group_size;
            c.desc_act = desc_act;
            c.checkpoint_format = fmt;
            const QuantizedWeight back = quantized_weight_from_gptq(t, c);
            EXPECT_TRUE(at::equal(back.zeros, qw.zeros)) << "bits " << bits << " g " << group_size << " " << fmt;
            EXPECT_TRUE(at::equal(back.qweight, qw.qweight));
            EXPECT_TRUE(at::equal(dequantize(back), dequantize(qw)));
        }
        EXPECT_EQ(qw.zeros.min().item<int>(), 0);
        EXPECT_EQ(qw.zeros.max().item<int>(), qw.maxq());
        // dequantize == S·(Q − Z) from the unpacked codes, gathered by g_idx.
        const at::Tensor gi = qw.g_idx.to(at::kLong);
        const at::Tensor ref = qw.scales.to(at::kFloat).index_select(0, gi) *
                               (codes.to(at::kFloat) - qw.zeros.to(at::kFloat).index_select(0, gi));
        EXPECT_TRUE(at::equal(dequantize(qw), ref));
        EXPECT_TRUE(at::equal(dequantize(qw, at::kHalf), ref.to(at::kHalf)));
        EXPECT_TRUE(at::equal(dequantize(qw, at::kBFloat16), ref.to(at::kBFloat16)));
    }
}

INSTANTIATE_TEST_SUITE_P(AllBitsAndGroups, PackRoundTrip,
                         ::testing::Combine(::testing::Values(2, 3, 4, 8), ::testing::Values(32, 64, 128, -1)));

TEST(Pack, DequantWithOffsetIsSTimesQMinusZPlusF) {
    // Every width, 37 columns (no whole vector), act-order groups (the group changes from row to row).
    for (const int bits : {2, 3, 4, 8}) {
        for (const bool desc_act : {false, true}) {
            QuantizedWeight qw = random_qw(bits, 32, 128, 37, 7 + bits, desc_act);
            qw.offset = at::rand({qw.n_groups(), 37}, at::kFloat) - 0.5;
            const at::Tensor gi = qw.g_idx.to(at::kLong);
            const at::Tensor ref = qw.scales.to(at::kFloat).index_select(0, gi) *
                                   ((unpack_codes(qw).to(at::kFloat) - qw.zeros.to(at::kFloat).index_select(0, gi)) +
                                    qw.offset.index_select(0, gi));
            EXPECT_TRUE(at::equal(dequantize(qw), ref)) << "bits " << bits << " act-order " << desc_act;
            EXPECT_TRUE(at::equal(dequantize(qw, at::kBFloat16), ref.to(at::kBFloat16))) << "bits " << bits;
            EXPECT_TRUE(at::equal(dequantize(qw, at::kHalf), ref.to(at::kHalf))) << "bits " << bits;
        }
    }
}

TEST(Pack, BadInputsThrowWithShapes) {
    EXPECT_THROW(pack_codes(at::full({32, 4}, 16, at::kLong), 4), lota::Error);  // code > maxq
    EXPECT_THROW(pack_codes(at::zeros({12, 4}, at::kLong), 3), lota::Error);     // 12*3 not a multiple of 32
    EXPECT_THROW(pack_codes(at::zeros({32, 4}, at::kLong), 5), lota::Error);     // bits 5
    QuantizedWeight qw = random_qw(4, 32, 64, 32, 3);
    qw.qweight = qw.qweight.narrow(0, 0, 4).contiguous();
    try {
        quantized_weight_check(qw, "model.layers.0.mlp.up_proj");
        FAIL() << "no throw";
    } catch (const lota::Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("model.layers.0.mlp.up_proj"), std::string::npos) << m;
        EXPECT_NE(m.find("'qweight' has shape [4, 32], expected [8, 32]"), std::string::npos) << m;
        EXPECT_NE(m.find("in=64, out=32, bits=4, group_size=32"), std::string::npos) << m;
    }
    QuantizedWeight bad_g = random_qw(4, 32, 64, 32, 3);
    bad_g.group_size = 48;
    EXPECT_THROW(quantized_weight_check(bad_g), lota::Error);
}
