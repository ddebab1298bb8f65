// The per-step re-merge of training (quant/lota_remerge.h): starting from the base codes and going
// through a sequence of adapters, each re-merge from the previous (Q', M) state must give exactly
// what the one-off merge lota_merge(base, A, B, ω) gives (codes and offsets bit for bit), for every
// bit width, with and without act-order, with markers of both signs at the grid edges; the 1-bit
// moved-code store must round-trip; the device-side statistics must count the markers.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "kernels/lota_remerge_cpu.h"
#include "kernels/lota_remerge_formula.h"
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
                const at::Tensor m =
                    lota_merge_reference(a_t, b_t, q, base.g_idx, base.n_groups(), omega, base.maxq()).markers;
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

// The fused CUDA kernel's per-weight step (kernels/lota_remerge_formula.h), run here on the CPU over
// whole layers in the kernel's tiling (8 columns × one packed word of rows), against the tensor-op
// re-merge over a sequence of adapters: codes, moved-code bits, marker counts, and the offsets from
// its column sums. What only the GPU can check (loads, block reductions) is LotaRemergeCuda's (tests/cpp/kernels).
TEST(LotaRemerge, FusedKernelStepMatchesTensorOps) {
    for (int v = -2048; v <= 2048; ++v) {
        const at::Tensor h = at::full({1}, static_cast<double>(v), at::kDouble).to(at::kHalf);
        ASSERT_EQ(lota::kernels::half_bits_to_int(*reinterpret_cast<const uint16_t*>(h.data_ptr())), v);
    }
    at::Generator gen = make_gen(621);
    const int64_t K = 256, N = 48, r = 5;
    const double omega = 2.5;
    const int t = 2;  // ⌊ω⌋
    for (const int bits : {2, 3, 4, 8}) {
        for (const int64_t g : {32, 64, 128}) {
            const std::string what = std::to_string(bits) + " bits, g " + std::to_string(g);
            const int64_t R = lota::kernels::remerge_tile_rows(bits), WR = R * bits / 32, G = K / g;
            const QuantizedWeight base = make_layer(K, N, bits, g, false, gen);
            const LotaGroups groups = lota_groups_make(base.g_idx, G);
            LotaMergedCodes ref = lota_merged_codes_init(base);
            at::Tensor words = base.qweight.clone(), moved = ref.moved.clone();
            at::Tensor p_old;  // float16 [K, N] of the adapter that made `words`
            for (int step = 0; step < 3; ++step) {
                const at::Tensor a_t = rand_ternary({r, K}, gen), b_t = rand_ternary({N, r}, gen);
                const at::Tensor p_new = lota_delta_w(a_t, b_t).to(at::kHalf).contiguous();
                at::Tensor words_out = at::zeros_like(words), moved_out = at::zeros_like(moved);
                at::Tensor sum_p = at::zeros({G, N}, at::kLong), sum_m = at::zeros({G, N}, at::kLong);
                unsigned up = 0, down = 0;
                const auto* pn = reinterpret_cast<const uint16_t*>(p_new.data_ptr());
                const auto* po = p_old.defined() ? reinterpret_cast<const uint16_t*>(p_old.data_ptr()) : nullptr;
                const auto* w_in = reinterpret_cast<const uint32_t*>(words.data_ptr<int32_t>());
                auto* w_out = reinterpret_cast<uint32_t*>(words_out.data_ptr<int32_t>());
                const uint8_t* f_in = moved.data_ptr<uint8_t>();
                uint8_t* f_out = moved_out.data_ptr<uint8_t>();
                for (int64_t tile = 0; tile < K / R; ++tile) {  // rows tile·R ..; words tile·WR ..
                    for (int64_t n0 = 0; n0 < N; n0 += 8) {
                        int32_t in[3][8];
                        uint32_t out[3][8] = {};
                        int sp[8] = {}, sm[8] = {};
                        for (int64_t x = 0; x < WR; ++x)
                            for (int c = 0; c < 8; ++c)
                                in[x][c] = static_cast<int32_t>(w_in[(tile * WR + x) * N + n0 + c]);
                        for (int i = 0; i < R; ++i) {
                            const int64_t e = (tile * R + i) * N + n0;
                            const unsigned flags = f_in[e / 8];
                            ASSERT_TRUE(flags == 0 || po != nullptr);
                            f_out[e / 8] = static_cast<uint8_t>(lota::kernels::remerge_row8_for_bits(
                                bits, i, &in[0][0], flags, po ? po + e : nullptr, pn + e, t, &out[0][0], sp, sm, up,
                                down));
                        }
                        for (int c = 0; c < 8; ++c) {
                            for (int64_t x = 0; x < WR; ++x) w_out[(tile * WR + x) * N + n0 + c] = out[x][c];
                            sum_p[tile * R / g][n0 + c] += sp[c];
                            sum_m[tile * R / g][n0 + c] += sm[c];
                        }
                    }
                }
                const LotaRemerged x = lota_remerge_ops(ref, base, groups, a_t, b_t, omega);
                const std::string at_step = what + ", step " + std::to_string(step);
                expect_bitwise_equal(words_out, x.codes.qweight, at_step + ": codes");
                expect_bitwise_equal(moved_out, x.codes.moved, at_step + ": moved-code bits");
                expect_bitwise_equal(lota_offset_from_sums(sum_p, sum_m, g, omega), x.offset, at_step + ": offsets");
                EXPECT_EQ(static_cast<double>(up), x.stats[0].item<double>()) << at_step;
                EXPECT_EQ(static_cast<double>(down), x.stats[1].item<double>()) << at_step;
                EXPECT_GT(up, 0u) << at_step << ": the test needs markers of both signs";
                EXPECT_GT(down, 0u) << at_step;
                ref = x.codes;
                words = words_out;
                moved = moved_out;
                p_old = p_new;
            }
        }
    }
}

// The fused CPU kernel (kernels/lota_remerge_cpu.h) against the tensor-op re-merge over a sequence of
// adapters, for every width it takes (3-bit codes straddle words): codes, moved-code bits, marker
// counts and the offsets from its column sums, with P_old from a GEMM and from int8 dot products
// (outputs poisoned first), and lota_remerge's CPU dispatch giving the same.
TEST(LotaRemerge, CpuKernelMatchesTensorOps) {
    at::Generator gen = make_gen(641);
    const int64_t K = 256, N = 48, r = 5;
    const double omega = 2.5;
    for (const int bits : {2, 3, 4, 8}) {
        for (const int64_t g : {32, 64, 128}) {
            for (const bool p_old_gemm : {false, true}) {
                const std::string what = std::to_string(bits) + " bits, g " + std::to_string(g) +
                                         (p_old_gemm ? ", P_old from a GEMM" : ", P_old from dot products");
                const int64_t G = K / g;
                const QuantizedWeight base = make_layer(K, N, bits, g, false, gen);
                const LotaGroups groups = lota_groups_make(base.g_idx, G);
                LotaMergedCodes ref = lota_merged_codes_init(base);
                for (int step = 0; step < 3; ++step) {
                    const std::string at_step = what + ", step " + std::to_string(step);
                    const at::Tensor a_t = rand_ternary({r, K}, gen), b_t = rand_ternary({N, r}, gen);
                    const at::Tensor p_new = lota_delta_w_float(a_t, b_t).contiguous();
                    at::Tensor p_old, a_old, b_old;
                    if (ref.a_t.defined() && p_old_gemm) p_old = lota_delta_w_float(ref.a_t, ref.b_t).contiguous();
                    if (ref.a_t.defined() && !p_old_gemm) a_old = ref.a_t.t().contiguous(), b_old = ref.b_t;
                    at::Tensor words_out = at::full_like(ref.qweight, -1), moved_out = at::full_like(ref.moved, 255);
                    at::Tensor sum_p = at::full({G, N}, 12345, at::kInt), sum_m = at::full({G, N}, 12345, at::kInt);
                    at::Tensor counts = at::full({2}, -1, at::kLong);
                    lota::kernels::lota_remerge_cpu(
                        ref.qweight.data_ptr<int32_t>(), ref.moved.data_ptr<uint8_t>(),
                        p_old.defined() ? p_old.data_ptr<float>() : nullptr,
                        a_old.defined() ? a_old.data_ptr<int8_t>() : nullptr,
                        b_old.defined() ? b_old.data_ptr<int8_t>() : nullptr, r, p_new.data_ptr<float>(),
                        words_out.data_ptr<int32_t>(), moved_out.data_ptr<uint8_t>(), sum_p.data_ptr<int32_t>(),
                        sum_m.data_ptr<int32_t>(), counts.data_ptr<int64_t>(), K, N, g, bits, 2);
                    const LotaRemerged x = lota_remerge_ops(ref, base, groups, a_t, b_t, omega);
                    expect_bitwise_equal(words_out, x.codes.qweight, at_step + ": codes");
                    expect_bitwise_equal(moved_out, x.codes.moved, at_step + ": moved-code bits");
                    expect_bitwise_equal(lota_offset_from_sums(sum_p, sum_m, g, omega), x.offset,
                                         at_step + ": offsets");
                    EXPECT_EQ(static_cast<double>(counts[0].item<int64_t>()), x.stats[0].item<double>()) << at_step;
                    EXPECT_EQ(static_cast<double>(counts[1].item<int64_t>()), x.stats[1].item<double>()) << at_step;
                    EXPECT_GT(counts[0].item<int64_t>(), 0) << at_step << ": the test needs markers of both signs";
                    EXPECT_GT(counts[1].item<int64_t>(), 0) << at_step;
                    const LotaRemerged y = lota_remerge(ref, base, groups, a_t, b_t, omega);  // the CPU dispatch
                    expect_bitwise_equal(y.codes.qweight, x.codes.qweight, at_step + ": lota_remerge codes");
                    expect_bitwise_equal(y.codes.moved, x.codes.moved, at_step + ": lota_remerge moved bits");
                    expect_bitwise_equal(y.offset, x.offset, at_step + ": lota_remerge offsets");
                    expect_bitwise_equal(y.stats, x.stats, at_step + ": lota_remerge stats");
                    ref = x.codes;
                }
            }
        }
    }
}
