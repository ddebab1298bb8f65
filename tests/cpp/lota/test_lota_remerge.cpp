// The per-step re-merge of training (quant/lota_remerge.h): starting from the base codes and going
// through a sequence of adapters, each re-merge from the previous (Q', M) state must give exactly
// what the one-off merge lota_merge(base, A, B, ω) gives (codes and offsets bit for bit), for every
// bit width, with and without act-order, with markers of both signs at the grid edges; the 1-bit
// moved-code store must round-trip; the device-side statistics must count the markers.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "lota_test_util.h"
#include "quant/lota.h"
#include "quant/lota_merge.h"
#include "quant/lota_remerge.h"
#include "quant/quantized_weight.h"
#include "util/check.h"

using namespace lota::quant;
using namespace lota_test;

TEST(LotaRemerge, MovedBitsRoundTrip) {
    at::Generator gen = make_gen(601);
    for (const auto& [K, N] : std::vector<std::pair<int64_t, int64_t>>{{8, 4}, {3, 5}, {1, 1}, {7, 13}, {16, 9}}) {
        const at::Tensor bits = at::randint(0, 2, {K, N}, gen, at::TensorOptions().dtype(at::kByte));
        const at::Tensor packed = lota_moved_pack(bits);
        EXPECT_EQ(packed.numel(), (K * N + 7) / 8);
        expect_bitwise_equal(lota_moved_unpack(packed, K, N), bits, "moved bits " + std::to_string(K * N));
    }
    EXPECT_THROW(lota_moved_unpack(at::zeros({3}, at::kByte), 8, 4), lota::Error);
}

TEST(LotaRemerge, SequenceOfAdaptersMatchesOneOffMerge) {
    at::Generator gen = make_gen(611);
    const int64_t K = 96, N = 20, r = 3;
    const double omega = 1.5;  // |P| ≥ 2 fires: markers of both signs, many at the grid edges
    for (const int bits : {2, 3, 4, 8}) {
        for (const bool act_order : {false, true}) {
            const std::string what = std::to_string(bits) + " bits" + (act_order ? ", act-order" : "");
            const QuantizedWeight base = make_layer(K, N, bits, 32, act_order, gen);
            const LotaGroups groups = lota_groups_make(base.g_idx, base.n_groups());
            EXPECT_EQ(groups.perm.defined(), act_order) << what;
            LotaMergedCodes codes = lota_merged_codes_init(base);
            int64_t fired = 0;
            for (int step = 0; step < 4; ++step) {
                const at::Tensor a_t = rand_ternary({r, K}, gen), b_t = rand_ternary({N, r}, gen);
                const LotaRemerged got = lota_remerge(codes, base, groups, a_t, b_t, omega);
                const QuantizedWeight ref = lota_merge(base, a_t, b_t, omega);
                const std::string at_step = what + ", step " + std::to_string(step);
                expect_bitwise_equal(got.codes.qweight, ref.qweight, at_step + ": merged codes");
                expect_bitwise_equal(got.offset, ref.offset, at_step + ": offsets");
                const at::Tensor q = unpack_codes(base);
                const at::Tensor m = lota_premerge(a_t, b_t, q, base.g_idx, base.n_groups(), omega, base.maxq()).markers;
                expect_bitwise_equal(lota_moved_unpack(got.codes.moved, K, N), m.ne(0).to(at::kByte),
                                     at_step + ": stored moved-code bits");
                const int64_t pos = m.eq(1).sum().item<int64_t>(), neg = m.eq(-1).sum().item<int64_t>();
                EXPECT_EQ(got.stats[0].item<double>(), (double)pos) << at_step;
                EXPECT_EQ(got.stats[1].item<double>(), (double)neg) << at_step;
                const double abs_f = ref.offset.to(at::kDouble).abs().sum().item<double>();
                EXPECT_NEAR(got.stats[2].item<double>(), abs_f, 1e-12 * (1 + abs_f)) << at_step;
                fired += pos * neg > 0;
                codes = got.codes;
            }
            EXPECT_GT(fired, 0) << what << ": markers of both signs never fired";
        }
    }
}

TEST(LotaRemerge, ZeroAdapterRestoresBaseCodes) {
    // After markers fired, B = 0 must bring back exactly the base codes (Q = Q' − M is exact).
    at::Generator gen = make_gen(621);
    const QuantizedWeight base = make_layer(64, 16, 4, 32, true, gen);
    const LotaGroups groups = lota_groups_make(base.g_idx, base.n_groups());
    const at::Tensor a_t = rand_ternary({2, 64}, gen);
    const at::Tensor b_t = rand_ternary({16, 2}, gen);
    const LotaRemerged fired = lota_remerge(lota_merged_codes_init(base), base, groups, a_t, b_t, 1.5);
    ASSERT_FALSE(at::equal(fired.codes.qweight, base.qweight)) << "no marker fired";
    const LotaRemerged back = lota_remerge(fired.codes, base, groups, a_t, lota_init_b(16, 2), 1.5);
    expect_bitwise_equal(back.codes.qweight, base.qweight, "codes after B = 0");
    EXPECT_EQ(back.offset.abs().max().item<float>(), 0.0f);
    EXPECT_EQ(back.stats[0].item<double>() + back.stats[1].item<double>(), 0.0);
}

TEST(LotaRemerge, RejectsMismatchedShapes) {
    at::Generator gen = make_gen(631);
    const QuantizedWeight base = make_layer(64, 16, 4, 32, false, gen);
    const LotaGroups groups = lota_groups_make(base.g_idx, base.n_groups());
    const LotaMergedCodes codes = lota_merged_codes_init(base);
    EXPECT_THROW(lota_remerge(codes, base, groups, rand_ternary({2, 32}, gen), rand_ternary({16, 2}, gen), 1.5),
                 lota::Error);
    EXPECT_THROW(lota_remerge(codes, base, groups, rand_ternary({2, 64}, gen), rand_ternary({8, 2}, gen), 1.5),
                 lota::Error);
    EXPECT_THROW(lota_remerge(codes, base, groups, rand_ternary({2, 64}, gen), rand_ternary({16, 2}, gen), 0.0),
                 lota::Error);
}
