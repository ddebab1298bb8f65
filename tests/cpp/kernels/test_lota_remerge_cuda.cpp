// The per-step LoTA re-merge (quant/lota_remerge.h) on CUDA against its CPU run (the tensor-op twin
// lota_remerge_ops), bit for bit over a sequence of adapters: the fused kernel (2/3/4/8 bits,
// contiguous groups, N % 8 == 0) and the tensor-op fallback on the GPU (act-order, N = 44).
// Codes, moved-code flags and offsets must be identical, marker counts exact, and the codes equal to
// the one-off merge from the base. Fresh random layers and adapters per case, outputs poisoned first.
#include <gtest/gtest.h>

#include <string>

#include <ATen/ATen.h>

#include "../cuda_test_util.h"
#include "../lota/lota_test_util.h"
#include "quant/lota.h"
#include "quant/lota_merge.h"
#include "quant/lota_remerge.h"
#include "quant/quantized_weight.h"

using namespace lota::quant;
using namespace lota_test;
using lota_cuda_test::poison_device_cache;

TEST(LotaRemergeCuda, MatchesCpuBitForBit) {
    const at::Device cuda(at::kCUDA);
    at::Generator gen = make_gen(701);
    // ω between r/3 and r/2 (non-integer where the fused kernel compares with ⌊ω⌋): |P| > ω fires for
    // markers of both signs at every rank.
    struct Case { int bits; int64_t K, g, N, r; double omega; bool act_order; };
    const Case cases[] = {{2, 256, 64, 48, 5, 2.5, false},  {4, 256, 64, 48, 5, 2.5, false},
                          {8, 256, 64, 48, 5, 2.5, false},  {2, 256, 32, 48, 5, 2.5, false},
                          {4, 256, 128, 64, 5, 2.5, false}, {8, 256, 128, 64, 5, 2.5, false},
                          {4, 256, 256, 24, 5, 2.5, false}, {4, 96, 32, 40, 1, 0.5, false},
                          {2, 96, 32, 8, 16, 5.5, false},   {2, 256, 64, 48, 5, 2.5, true},
                          {4, 256, 64, 48, 5, 2.5, true},   {8, 256, 64, 48, 5, 2.5, true},
                          {4, 256, 64, 44, 5, 2.5, false},  {3, 256, 64, 48, 5, 2.5, false},
                          {3, 96, 32, 40, 3, 1.5, true},    {3, 256, 32, 48, 5, 2.5, false},
                          {3, 256, 128, 64, 5, 2.5, false}, {3, 96, 96, 16, 3, 1.5, false}};
    for (const Case& c : cases) {
        const std::string what = std::to_string(c.bits) + " bits, K " + std::to_string(c.K) + ", g " +
                                 std::to_string(c.g) + ", N " + std::to_string(c.N) + ", r " + std::to_string(c.r) +
                                 ", act-order " + std::to_string(c.act_order);
        const QuantizedWeight base = make_layer(c.K, c.N, c.bits, c.g, c.act_order, gen);
        const QuantizedWeight base_d = lota_cuda_test::quantized_on(base, cuda);
        const LotaGroups g_cpu = lota_groups_make(base.g_idx, base.n_groups());
        const LotaGroups g_cuda = lota_groups_make(base_d.g_idx, base_d.n_groups());
        LotaMergedCodes c_cpu = lota_merged_codes_init(base), c_cuda = lota_merged_codes_init(base_d);
        const double omega = c.omega;
        int64_t moved_total = 0;
        for (int step = 0; step < 3; ++step) {
            const at::Tensor a_t = rand_ternary({c.r, c.K}, gen), b_t = rand_ternary({c.N, c.r}, gen);
            const LotaRemerged x = lota_remerge_ops(c_cpu, base, g_cpu, a_t, b_t, omega);
            poison_device_cache(cuda);
            const LotaRemerged y = lota_remerge(c_cuda, base_d, g_cuda, a_t.to(cuda), b_t.to(cuda), omega);
            const std::string at_step = what + ", step " + std::to_string(step);
            ASSERT_TRUE(y.codes.qweight.is_cuda()) << at_step;
            expect_bitwise_equal(y.codes.qweight.cpu(), x.codes.qweight, at_step + ": codes");
            expect_bitwise_equal(y.codes.moved.cpu(), x.codes.moved, at_step + ": moved-code bits");
            expect_bitwise_equal(y.offset.cpu(), x.offset, at_step + ": offsets");
            expect_bitwise_equal(y.codes.qweight.cpu(), lota_merge(base, a_t, b_t, omega).qweight, at_step + ": merge");
            const at::Tensor sx = x.stats, sy = y.stats.cpu();
            EXPECT_EQ(sy[0].item<double>(), sx[0].item<double>()) << at_step << ": #(M = +1)";
            EXPECT_EQ(sy[1].item<double>(), sx[1].item<double>()) << at_step << ": #(M = -1)";
            EXPECT_NEAR(sy[2].item<double>(), sx[2].item<double>(), 1e-9 * sx[2].item<double>())
                << at_step << ": sum |F|";
            if (::testing::Test::HasFailure()) return;
            moved_total += static_cast<int64_t>(sx[0].item<double>() + sx[1].item<double>());
            c_cpu = x.codes;
            c_cuda = y.codes;
        }
        EXPECT_GT(moved_total, 0) << what << ": the test needs markers that fire";
    }
}
