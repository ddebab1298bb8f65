// t-SignSGD (DESIGN §1): schedule values at the phase edges (official and paper schedules), the
// exact quantile against a sort-based reference and torch.quantile, and the update rule (both
// thresholds, τ, clamping at ±1, the phase-2 guard) against an independent float64 reference.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>

#include "lota_test_util.h"
#include "train/tsignsgd.h"
#include "util/check.h"

using namespace lota::train;
using namespace lota_test;

namespace {

// Linear-interpolation quantile of a float tensor, from a full sort, in float64.
double ref_quantile(const at::Tensor& x, double q) {
    const at::Tensor sorted = std::get<0>(at::sort(x.reshape({-1}).to(at::kDouble)));
    const int64_t n = sorted.numel();
    const double rank = q * static_cast<double>(n - 1);
    const int64_t lo = static_cast<int64_t>(std::floor(rank));
    const int64_t hi = std::min(lo + 1, n - 1);
    const double w = rank - static_cast<double>(lo);
    const double a = sorted[lo].item<double>(), b = sorted[hi].item<double>();
    return w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}

// The update of one tensor per DESIGN, every comparison in float64.
at::Tensor ref_update(const at::Tensor& p, const at::Tensor& g, double sigma, double tau, bool guard,
                      double guard_q) {
    const at::Tensor mag = g.abs().to(at::kDouble);
    at::Tensor sel = mag.gt(ref_quantile(g.abs(), sigma)).logical_and(mag.gt(tau));
    if (guard) sel = sel.logical_and(mag.le(ref_quantile(g.abs(), guard_q)));
    const at::Tensor moved = (p.to(at::kInt) - g.sign().to(at::kInt)).clamp(-1, 1).to(at::kChar);
    return at::where(sel, moved, p);
}

}  // namespace

TEST(TSignSgd, ScheduleAtPhaseEdges) {
    TSignSgdOptions o;
    const int64_t T = 1000;
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(0, T, o), 0.95);
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(1, T, o), 0.95 + (1.0 / 800.0) * (0.999 - 0.95));
    EXPECT_EQ(tsignsgd_quantile(800, T, o), 0.999);  // exactly q_mid at 0.8T
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(400, T, o), 0.95 + 0.5 * (0.999 - 0.95));
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(801, T, o), 0.999 + (1.0 / 200.0) * (0.9999 - 0.999));
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(900, T, o), 0.999 + 0.5 * (0.9999 - 0.999));
    EXPECT_EQ(tsignsgd_quantile(1000, T, o), 0.9999);  // exactly q_end at T
    EXPECT_EQ(tsignsgd_quantile(1500, T, o), 0.9999);
    // Monotone non-decreasing over the run.
    double prev = 0;
    for (int64_t t = 1; t <= T; ++t) {
        const double q = tsignsgd_quantile(t, T, o);
        ASSERT_GE(q, prev) << "t=" << t;
        prev = q;
    }
    // Paper schedule: same phase 1, 0.01% fixed for the last 20%.
    o.schedule = TSignSchedule::PAPER_FIXED_LAST;
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(1, T, o), 0.95 + (1.0 / 800.0) * (0.999 - 0.95));
    EXPECT_EQ(tsignsgd_quantile(800, T, o), 0.999);
    EXPECT_EQ(tsignsgd_quantile(801, T, o), 0.9999);
    EXPECT_EQ(tsignsgd_quantile(950, T, o), 0.9999);
    EXPECT_EQ(tsignsgd_quantile(T, T, o), 0.9999);
    // T not divisible by 5: phase 1 ends at 5.6.
    o.schedule = TSignSchedule::OFFICIAL_INTERPOLATE;
    EXPECT_DOUBLE_EQ(tsignsgd_quantile(5, 7, o), 0.95 + (5.0 / 5.6) * (0.999 - 0.95));
    EXPECT_NEAR(tsignsgd_quantile(6, 7, o), 0.999 + (0.4 / 1.4) * (0.9999 - 0.999), 1e-15);
    EXPECT_THROW(tsignsgd_quantile(1, 0, o), lota::Error);
    o.q_end = 1.5;
    EXPECT_THROW(tsignsgd_quantile(1, 10, o), lota::Error);
}

TEST(TSignSgd, ExactQuantileMatchesSortAndTorchQuantile) {
    at::Generator gen = make_gen(401);
    const at::Tensor x = at::randn({10007}, gen).abs();
    const at::Tensor ties = at::randint(0, 5, {3001}, gen).to(at::kFloat) * 0.25f;  // heavy ties
    const at::Tensor one = at::full({1}, 3.5f);
    for (const at::Tensor& t : {x, ties, one}) {
        for (const double q : {0.0, 0.25, 0.5, 0.95, 0.95006125, 0.999, 0.9999, 0.99995, 1.0}) {
            const double got = tsignsgd_exact_quantile(t, q);
            EXPECT_EQ(got, ref_quantile(t, q)) << "n=" << t.numel() << " q=" << q;
            // torch.quantile on float64 input (ranks in float64, same lerp).
            EXPECT_EQ(got, at::quantile(t.to(at::kDouble), q).item<double>()) << "n=" << t.numel() << " q=" << q;
        }
    }
    // 2-D input is flattened; non-float input is rejected.
    EXPECT_EQ(tsignsgd_exact_quantile(x.narrow(0, 0, 10000).view({100, 100}), 0.99),
              ref_quantile(x.narrow(0, 0, 10000), 0.99));
    EXPECT_THROW(tsignsgd_exact_quantile(x.to(at::kDouble), 0.5), lota::Error);
}

TEST(TSignSgd, StepMovesOnlyEntriesAboveBothThresholds) {
    at::Generator gen = make_gen(411);
    std::vector<TSignSgdParam> params;
    std::vector<at::Tensor> before;
    for (const int64_t n : {4000, 2 * 1536, 777}) {
        at::Tensor p = rand_ternary({n}, gen);
        p.narrow(0, 0, n / 3).fill_(1);  // many entries at +1 with negative grad: must clamp
        at::Tensor g = at::randn({n}, gen);
        g.narrow(0, 0, n / 3).abs_().neg_();
        g.narrow(0, n / 3, 50).zero_();
        params.push_back({n == 2 * 1536 ? p.view({2, 1536}) : p, n == 2 * 1536 ? g.view({2, 1536}) : g});
        before.push_back(params.back().param.clone());
    }
    const TSignSgdOptions o;
    const TSignSgdStats st = tsignsgd_step(params, 1, 100, o);
    EXPECT_DOUBLE_EQ(st.sigma_t, tsignsgd_quantile(1, 100, o));
    EXPECT_FALSE(st.guard_active);
    int64_t changed = 0, selected = 0;
    double sq = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        const at::Tensor ref = ref_update(before[i], params[i].grad, st.sigma_t, o.tau, false, 0);
        expect_bitwise_equal(params[i].param, ref, "param " + std::to_string(i));
        changed += ref.ne(before[i]).sum().item<int64_t>();
        const at::Tensor mag = params[i].grad.abs().to(at::kDouble);
        selected += mag.gt(ref_quantile(params[i].grad.abs(), st.sigma_t)).sum().item<int64_t>();
        sq += params[i].grad.to(at::kDouble).pow(2).sum().item<double>();
        EXPECT_TRUE(params[i].param.abs().le(1).all().item<bool>());
    }
    EXPECT_EQ(st.n_changed, changed);
    EXPECT_EQ(st.n_selected, selected);
    EXPECT_LT(st.n_changed, st.n_selected) << "some selected entries must be clamped at +1";
    // About 5% of each tensor is selected at t = 1 (top 5%, minus ties).
    EXPECT_NEAR(static_cast<double>(st.n_selected) / (4000 + 3072 + 777), 0.05, 0.002);
    EXPECT_NEAR(st.grad_norm, std::sqrt(sq), 1e-9 * std::sqrt(sq));
}

TEST(TSignSgd, TauBlocksTinyGradients) {
    // 90% zeros, then grads of 1e-10 (below τ) and 2e-9 (above): θ_t = 0 for q ≤ 0.9, so only τ decides.
    at::Tensor p = at::zeros({1000}, at::kChar);
    at::Tensor g = at::zeros({1000});
    g.narrow(0, 900, 50).fill_(1e-10f);
    g.narrow(0, 950, 50).fill_(-2e-9f);
    TSignSgdOptions o;
    o.q_start = 0.5;
    const TSignSgdStats st = tsignsgd_step({{p, g}}, 0, 10, o);
    EXPECT_EQ(st.n_changed, 50);
    EXPECT_EQ(p.narrow(0, 0, 950).abs().sum().item<int64_t>(), 0);
    EXPECT_TRUE(p.narrow(0, 950, 50).eq(1).all().item<bool>());
    // τ = 1e-9 is not a float32: the largest float ≤ τ must not move, the next float up must.
    float below = static_cast<float>(1e-9);
    if (static_cast<double>(below) > 1e-9) below = std::nextafter(below, 0.0f);
    const float above = std::nextafter(below, 1.0f);
    ASSERT_LE(static_cast<double>(below), 1e-9);
    ASSERT_GT(static_cast<double>(above), 1e-9);
    at::Tensor p2 = at::zeros({4}, at::kChar);
    at::Tensor g2 = at::tensor({below, -below, above, -above});
    o.q_start = 0.0;
    tsignsgd_step({{p2, g2}}, 0, 10, o);
    EXPECT_EQ(p2[0].item<int>(), 0);
    EXPECT_EQ(p2[1].item<int>(), 0);
    EXPECT_EQ(p2[2].item<int>(), -1);
    EXPECT_EQ(p2[3].item<int>(), 1);
}

TEST(TSignSgd, GuardSkipsLargestGradientsInPhase2) {
    at::Generator gen = make_gen(421);
    const int64_t n = 100000;
    at::Tensor g = at::randn({n}, gen) * 0.1;  // global norm ≈ 0.1·√n ≈ 32 > 10
    const at::Tensor p0 = rand_ternary({n}, gen);
    const TSignSgdOptions o;
    for (const int64_t t : {90, 50}) {  // phase 2 (guard on) and phase 1 (guard off despite the norm)
        at::Tensor p = p0.clone();
        const TSignSgdStats st = tsignsgd_step({{p, g}}, t, 100, o);
        const bool guard = t > 80;
        EXPECT_EQ(st.guard_active, guard);
        expect_bitwise_equal(p, ref_update(p0, g, st.sigma_t, o.tau, guard, o.guard_quantile), "guarded update");
        const int64_t above = g.abs().to(at::kDouble).gt(ref_quantile(g.abs(), o.guard_quantile)).sum().item<int64_t>();
        EXPECT_EQ(st.n_guarded, guard ? above : 0);
        if (guard) {
            EXPECT_GT(st.n_guarded, 0);
        }
    }
    // Small global norm: guard stays off in phase 2.
    at::Tensor p = p0.clone();
    const TSignSgdStats st = tsignsgd_step({{p, g * 0.001}}, 90, 100, o);
    EXPECT_FALSE(st.guard_active);
    EXPECT_EQ(st.n_guarded, 0);
    expect_bitwise_equal(p, ref_update(p0, g * 0.001, st.sigma_t, o.tau, false, 0), "unguarded update");
}

TEST(TSignSgd, RejectsBadParams) {
    at::Tensor p = at::zeros({8}, at::kChar);
    EXPECT_THROW(tsignsgd_step({{p, at::zeros({8}, at::kDouble)}}, 1, 10), lota::Error);
    EXPECT_THROW(tsignsgd_step({{p, at::zeros({9})}}, 1, 10), lota::Error);
    EXPECT_THROW(tsignsgd_step({{p.to(at::kFloat), at::zeros({8})}}, 1, 10), lota::Error);
}

TEST(TSignSgd, EqualSizedTensorsBatchedAsInSeparateSteps) {
    // Tensors of equal size are processed as rows of one matrix (Note [batched quantiles]); the
    // quantiles stay per tensor: each must move exactly as in a step over that tensor alone, with
    // the guard decided by the global norm of all of them.
    at::Generator gen = make_gen(431);
    for (const int64_t t : {10, 95}) {  // phase 1, phase 2 (norm ≈ 0.5·√(5·3000) ≈ 61 > 10: guard on)
        std::vector<TSignSgdParam> params;
        std::vector<at::Tensor> before;
        for (int i = 0; i < 5; ++i) {
            const int64_t n = i == 4 ? 1000 : 3000;  // one of a different size
            params.push_back({rand_ternary({n}, gen), at::randn({n}, gen) * (0.2 + 0.2 * i)});
            before.push_back(params.back().param.clone());
        }
        params[1].param = params[1].param.view({3, 1000});
        params[1].grad = params[1].grad.view({3, 1000});
        const TSignSgdOptions o;
        const TSignSgdStats st = tsignsgd_step(params, t, 100, o);
        EXPECT_EQ(st.guard_active, t > 80);
        int64_t changed = 0, guarded = 0;
        for (size_t i = 0; i < params.size(); ++i) {
            const at::Tensor ref = ref_update(before[i].view(params[i].param.sizes()), params[i].grad, st.sigma_t,
                                              o.tau, st.guard_active, o.guard_quantile);
            expect_bitwise_equal(params[i].param, ref, "t " + std::to_string(t) + ", tensor " + std::to_string(i));
            changed += ref.ne(before[i].view(ref.sizes())).sum().item<int64_t>();
            if (st.guard_active) {
                const at::Tensor mag = params[i].grad.abs().to(at::kDouble);
                guarded += mag.gt(ref_quantile(params[i].grad.abs(), o.guard_quantile))
                               .logical_and(mag.gt(ref_quantile(params[i].grad.abs(), st.sigma_t)))
                               .sum()
                               .item<int64_t>();
            }
        }
        EXPECT_EQ(st.n_changed, changed);
        EXPECT_EQ(st.n_guarded, guarded);
    }
}

TEST(TSignSgd, AsyncStepReturnsTheSameStats) {
    at::Generator gen = make_gen(441);
    const at::Tensor g = at::randn({2000}, gen), p0 = rand_ternary({2000}, gen);
    at::Tensor p1 = p0.clone(), p2 = p0.clone();
    const TSignSgdStats a = tsignsgd_step({{p1, g}}, 3, 10);
    const TSignSgdDeviceStats b = tsignsgd_step_async({{p2, g}}, 3, 10);
    for (const at::Tensor& v : {b.n_selected, b.n_changed, b.n_guarded, b.grad_norm, b.guard_active}) {
        ASSERT_EQ(v.scalar_type(), at::kDouble);
        ASSERT_EQ(v.dim(), 0);
    }
    EXPECT_TRUE(at::equal(p1, p2));
    EXPECT_GT(a.n_changed, 0);
    EXPECT_EQ(a.n_selected, b.n_selected.item<double>());
    EXPECT_EQ(a.n_changed, b.n_changed.item<double>());
    EXPECT_EQ(a.n_guarded, b.n_guarded.item<double>());
    EXPECT_EQ(a.grad_norm, b.grad_norm.item<double>());
    EXPECT_EQ(a.guard_active, b.guard_active.item<double>() != 0);
}
