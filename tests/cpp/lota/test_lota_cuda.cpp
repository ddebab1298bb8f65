// The per-step training pieces on CUDA against their CPU runs: the re-merge (float16 P, byte-view
// packing) bit for bit over a sequence of adapters, LotaLinear training forward == merged inference
// with gradients equal to the CPU's, t-SignSGD (sort-based quantiles, batched rows) bit for bit, and
// the chunked loss. Skipped when this build or machine has no CUDA.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include "../cuda_test_util.h"
#include "lota_test_util.h"
#include "quant/lota.h"
#include "quant/lota_merge.h"
#include "quant/lota_remerge.h"
#include "quant/quantized_weight.h"
#include "train/lm_loss.h"
#include "train/tsignsgd.h"

using namespace lota::quant;
using namespace lota_test;

using lota_cuda_test::have_cuda;

TEST(LotaCuda, RemergeMatchesCpuBitForBit) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const at::Device cuda(at::kCUDA);
    at::Generator gen = make_gen(701);
    const int64_t K = 256, N = 48, r = 5;
    for (const int bits : {2, 4, 8}) {
        for (const bool act_order : {false, true}) {
            const QuantizedWeight base = make_layer(K, N, bits, 64, act_order, gen);
            const QuantizedWeight base_d = lota_cuda_test::quantized_on(base, cuda);
            const LotaGroups g_cpu = lota_groups_make(base.g_idx, base.n_groups());
            const LotaGroups g_cuda = lota_groups_make(base_d.g_idx, base_d.n_groups());
            LotaMergedCodes c_cpu = lota_merged_codes_init(base), c_cuda = lota_merged_codes_init(base_d);
            for (int step = 0; step < 3; ++step) {
                const at::Tensor a_t = rand_ternary({r, K}, gen), b_t = rand_ternary({N, r}, gen);
                const LotaRemerged x = lota_remerge(c_cpu, base, g_cpu, a_t, b_t, 2.5);
                const LotaRemerged y = lota_remerge(c_cuda, base_d, g_cuda, a_t.to(cuda), b_t.to(cuda), 2.5);
                const std::string what = std::to_string(bits) + " bits, act-order " + std::to_string(act_order);
                expect_bitwise_equal(y.codes.qweight.cpu(), x.codes.qweight, what + ": codes");
                expect_bitwise_equal(y.codes.moved.cpu(), x.codes.moved, what + ": moved-code bits");
                expect_bitwise_equal(y.offset.cpu(), x.offset, what + ": offsets");
                expect_bitwise_equal(y.codes.qweight.cpu(), lota_merge(base, a_t, b_t, 2.5).qweight, what + ": merge");
                c_cpu = x.codes;
                c_cuda = y.codes;
            }
        }
    }
}

TEST(LotaCuda, TSignSgdMatchesCpuBitForBit) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    at::Generator gen = make_gen(711);
    for (const int64_t t : {5, 95}) {  // phase 1; phase 2 with the guard on
        std::vector<lota::train::TSignSgdParam> cpu, cuda;
        for (int i = 0; i < 6; ++i) {
            const int64_t n = i < 4 ? 5000 : 777;
            const at::Tensor p = rand_ternary({n}, gen), g = at::randn({n}, gen) * 0.5;
            cpu.push_back({p.clone(), g});
            cuda.push_back({p.to(at::kCUDA), g.to(at::kCUDA)});
        }
        const lota::train::TSignSgdStats a = lota::train::tsignsgd_step(cpu, t, 100);
        const lota::train::TSignSgdStats b = lota::train::tsignsgd_step(cuda, t, 100);
        for (size_t i = 0; i < cpu.size(); ++i)
            expect_bitwise_equal(cuda[i].param.cpu(), cpu[i].param, "param " + std::to_string(i));
        EXPECT_EQ(a.n_selected, b.n_selected);
        EXPECT_EQ(a.n_changed, b.n_changed);
        EXPECT_EQ(a.n_guarded, b.n_guarded);
        EXPECT_EQ(a.guard_active, b.guard_active);
        EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-12 * a.grad_norm);
    }
}

TEST(LotaCuda, ChunkedLossMatchesCpu) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    at::Generator gen = make_gen(721);
    const at::Tensor h = at::randn({300, 64}, gen), w = at::randn({1000, 64}, gen) * 0.2;
    at::Tensor targets = at::randint(0, 1000, {300}, gen, at::TensorOptions().dtype(at::kLong));
    targets.narrow(0, 0, 40).fill_(-100);
    const at::Tensor hc = h.clone().requires_grad_(true), hg = h.to(at::kCUDA).requires_grad_(true);
    const at::Tensor lc = lota::train::lm_loss_sum(hc, w, targets, 128);
    const at::Tensor lg = lota::train::lm_loss_sum(hg, w.to(at::kCUDA), targets.to(at::kCUDA), 128);
    EXPECT_NEAR(lg.item<double>(), lc.item<double>(), 1e-5 * lc.item<double>());
    lc.backward();
    lg.backward();
    expect_close(hg.grad().cpu(), hc.grad(), 1e-6, 1e-4, "dL/dh CUDA vs CPU (TF32 may be on for the GEMMs)");
}
