// t-SignSGD with a gradient moving average (TSignSgdOptions::momentum, train/optimizer.h): over
// several steps with fresh gradients, the ternary parameters equal an independent float64
// transcription of m ← β·m + (1 − β)·g followed by the t-SignSGD rule on m (quantile, τ, phase-2
// guard on the norm of m), and the kept m equals the float64 average to float32 rounding; β = 0 is
// the stateless rule bit for bit; the saved state resumes bit-identically; a checkpoint without the
// moving average, or made with another β, is refused.
#include <cmath>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "../test_error.h"
#include "train/optimizer.h"
#include "train/tsignsgd.h"
#include "util/check.h"

using lota_test::error_of;

namespace {

using namespace lota::train;

at::Generator make_gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// torch.quantile's linear interpolation on a float64 tensor, from a full sort.
double ref_quantile(const at::Tensor& x, double q) {
    const at::Tensor sorted = std::get<0>(at::sort(x.reshape({-1})));
    const int64_t n = sorted.numel();
    const double rank = q * static_cast<double>(n - 1);
    const int64_t lo = static_cast<int64_t>(std::floor(rank));
    const int64_t hi = std::min(lo + 1, n - 1);
    const double w = rank - static_cast<double>(lo);
    const double a = sorted[lo].item<double>(), b = sorted[hi].item<double>();
    return w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}

// The float64 transcription: one step of the EMA and of the t-SignSGD rule on it, for all tensors.
void ref_step(std::vector<at::Tensor>& p, std::vector<at::Tensor>& m, const std::vector<at::Tensor>& g, double beta,
              int64_t t, int64_t T, const TSignSgdOptions& o) {
    double sq = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        m[i] = beta * m[i] + (1 - beta) * g[i].to(at::kDouble);
        sq += m[i].pow(2).sum().item<double>();
    }
    const double sigma = tsignsgd_quantile(t, T, o);
    const bool phase2 = static_cast<double>(t) > o.phase1_frac * static_cast<double>(T);
    const bool guard = phase2 && std::sqrt(sq) > o.guard_norm;
    for (size_t i = 0; i < p.size(); ++i) {
        const at::Tensor mag = m[i].abs();
        at::Tensor sel = mag.gt(ref_quantile(mag, sigma)).logical_and(mag.gt(o.tau));
        if (guard) sel = sel.logical_and(mag.le(ref_quantile(mag, o.guard_quantile)));
        const at::Tensor moved = (p[i].to(at::kInt) - m[i].sign().to(at::kInt)).clamp(-1, 1).to(at::kChar);
        p[i] = at::where(sel, moved, p[i]);
    }
}

struct Tensors {
    std::vector<at::Tensor> params, grads;
    std::vector<TSignSgdParam> pairs() const {
        return {{params[0], grads[0]}, {params[1], grads[1]}, {params[2], grads[2]}};
    }
};

// Three tensors (two of equal size, batched together by the rule), ternary start values.
Tensors make_run(uint64_t seed) {
    at::Generator gen = make_gen(seed);
    Tensors r;
    for (const auto& shape : std::vector<std::vector<int64_t>>{{8, 500}, {8, 500}, {700, 8}}) {
        r.params.push_back(at::randint(-1, 2, shape, gen, at::TensorOptions().dtype(at::kChar)));
        r.grads.push_back(at::zeros(shape));
    }
    return r;
}

// Step k's gradients: a persistent per-entry mean plus noise, so that the average differs from g.
std::vector<at::Tensor> grads_of_step(int64_t k, const Tensors& shapes) {
    std::vector<at::Tensor> g;
    at::Generator mean_gen = make_gen(1000), gen = make_gen(2000 + (uint64_t)k);
    for (const at::Tensor& p : shapes.params) {
        const at::Tensor mean = at::randn(p.sizes(), mean_gen) * 0.5;
        g.push_back(mean + at::randn(p.sizes(), gen));
    }
    return g;
}

void load_grads(Tensors& r, const std::vector<at::Tensor>& g) {
    for (size_t i = 0; i < g.size(); ++i) r.grads[i].copy_(g[i]);
}

std::vector<std::string> names() { return {"x.lora_A.weight", "x.lora_B.weight", "y.lora_A.weight"}; }

TEST(tsign_momentum, matches_float64_transcription_over_steps) {
    const int64_t T = 6;
    for (const double beta : {0.5, 0.9}) {
        SCOPED_TRACE(::testing::Message() << "beta " << beta);
        TSignSgdOptions o;
        o.momentum = beta;
        o.phase1_frac = 0.5;  // steps 4..6 in phase 2, with the guard on (norm of m ≫ 10)
        Tensors run = make_run(7);
        std::vector<at::Tensor> p_ref, m_ref;
        for (const at::Tensor& p : run.params) {
            p_ref.push_back(p.clone());
            m_ref.push_back(at::zeros(p.sizes(), at::kDouble));
        }
        TSignSgdOptimizer opt(run.pairs(), o, names());
        int64_t moved = 0;
        for (int64_t t = 1; t <= T; ++t) {
            SCOPED_TRACE(::testing::Message() << "step " << t);
            const std::vector<at::Tensor> g = grads_of_step(t, run);
            load_grads(run, g);
            std::vector<at::Tensor> before;
            for (const at::Tensor& p : run.params) before.push_back(p.clone());
            const nlohmann::json st = opt.step(t, T).read(at::kCPU);
            opt.zero_grad();
            ref_step(p_ref, m_ref, g, beta, t, T, o);
            double sq = 0;
            for (size_t i = 0; i < p_ref.size(); ++i) {
                EXPECT_TRUE(at::equal(run.params[i], p_ref[i])) << "tensor " << i;
                moved += run.params[i].ne(before[i]).sum().item<int64_t>();
                const at::Tensor m = opt.moments()[i].to(at::kDouble);
                EXPECT_TRUE(at::allclose(m, m_ref[i], 1e-6, 1e-7)) << "moving average of tensor " << i;
                sq += m_ref[i].pow(2).sum().item<double>();
            }
            EXPECT_NEAR(st.at("grad_norm").get<double>(), std::sqrt(sq), 1e-6 * std::sqrt(sq)) << "norm of m";
            EXPECT_EQ(st.at("guard_active").get<bool>(), t > 3);
            EXPECT_EQ(st.at("tsign_momentum").get<double>(), beta);
        }
        EXPECT_GT(moved, 100) << "the test needs entries that move";
    }
}

TEST(tsign_momentum, differs_from_the_plain_rule_and_zero_is_the_plain_rule) {
    const int64_t T = 4;
    Tensors plain = make_run(9), zero = make_run(9), ema = make_run(9);
    TSignSgdOptions o0, o9;
    o9.momentum = 0.9;
    TSignSgdOptimizer opt_plain(plain.pairs(), TSignSgdOptions{});
    TSignSgdOptimizer opt_zero(zero.pairs(), o0, names());
    TSignSgdOptimizer opt_ema(ema.pairs(), o9, names());
    for (int64_t t = 1; t <= T; ++t) {
        const std::vector<at::Tensor> g = grads_of_step(t, plain);
        for (Tensors* r : {&plain, &zero, &ema}) load_grads(*r, g);
        const nlohmann::json a = opt_plain.step(t, T).read(at::kCPU), b = opt_zero.step(t, T).read(at::kCPU);
        opt_ema.step(t, T);
        EXPECT_EQ(a, b) << "step " << t;
        opt_plain.zero_grad();
        opt_zero.zero_grad();
        opt_ema.zero_grad();
    }
    bool any_diff = false;
    for (size_t i = 0; i < plain.params.size(); ++i) {
        EXPECT_TRUE(at::equal(plain.params[i], zero.params[i]));
        any_diff = any_diff || !at::equal(plain.params[i], ema.params[i]);
        EXPECT_TRUE(ema.params[i].abs().le(1).all().item<bool>()) << "stays ternary";
    }
    EXPECT_TRUE(any_diff) << "beta 0.9 took the same steps as the plain rule";
    EXPECT_TRUE(opt_zero.moments().empty());
    EXPECT_TRUE(opt_zero.state_save().tensors.empty());
    EXPECT_TRUE(opt_zero.state_save().scalars.empty());
}

TEST(tsign_momentum, state_round_trip_continues_bit_identically) {
    const int64_t T = 5;
    TSignSgdOptions o;
    o.momentum = 0.8;
    Tensors full = make_run(3), first = make_run(3);
    TSignSgdOptimizer opt_full(full.pairs(), o, names());
    TSignSgdOptimizer opt_first(first.pairs(), o, names());
    for (int64_t t = 1; t <= 2; ++t) {
        const std::vector<at::Tensor> g = grads_of_step(t, full);
        load_grads(full, g);
        load_grads(first, g);
        opt_full.step(t, T);
        opt_first.step(t, T);
        opt_full.zero_grad();
        opt_first.zero_grad();
    }
    const OptimizerState saved = opt_first.state_save();
    EXPECT_EQ(saved.scalars.at("momentum").get<double>(), 0.8);
    std::vector<std::string> keys;
    for (const auto& [k, v] : saved.tensors) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"x.lora_A.weight.m", "x.lora_B.weight.m", "y.lora_A.weight.m"}));
    // A fresh optimizer over copies of the parameters, restored from the saved state.
    Tensors resumed = make_run(3);
    for (size_t i = 0; i < resumed.params.size(); ++i) resumed.params[i].copy_(first.params[i]);
    TSignSgdOptimizer opt_resumed(resumed.pairs(), o, names());
    opt_resumed.state_load(saved, "ckpt");
    for (int64_t t = 3; t <= T; ++t) {
        const std::vector<at::Tensor> g = grads_of_step(t, full);
        load_grads(full, g);
        load_grads(resumed, g);
        EXPECT_EQ(opt_full.step(t, T).read(at::kCPU), opt_resumed.step(t, T).read(at::kCPU));
        opt_full.zero_grad();
        opt_resumed.zero_grad();
    }
    for (size_t i = 0; i < full.params.size(); ++i) {
        EXPECT_TRUE(at::equal(full.params[i], resumed.params[i]));
        EXPECT_TRUE(at::equal(opt_full.moments()[i], opt_resumed.moments()[i]));
    }
}

TEST(tsign_momentum, missing_or_foreign_state_is_refused) {
    TSignSgdOptions o;
    o.momentum = 0.8;
    Tensors r = make_run(5);
    TSignSgdOptimizer opt(r.pairs(), o, names());
    const OptimizerState good = opt.state_save();
    EXPECT_EQ(error_of([&] { opt.state_load(good, "ckpt"); }), "");

    std::string e = error_of([&] { opt.state_load(OptimizerState{}, "out/checkpoint-2"); });
    EXPECT_NE(e.find("out/checkpoint-2: the checkpoint was made with --tsign-momentum 0, this run has 0.8"),
              std::string::npos)
        << e;
    OptimizerState no_tensors = good;
    no_tensors.tensors.clear();
    e = error_of([&] { opt.state_load(no_tensors, "ckpt"); });
    EXPECT_NE(e.find("optimizer.safetensors has no 'x.lora_A.weight.m'"), std::string::npos) << e;
    OptimizerState other_beta = good;
    other_beta.scalars["momentum"] = 0.5;
    e = error_of([&] { opt.state_load(other_beta, "ckpt"); });
    EXPECT_NE(e.find("made with --tsign-momentum 0.5, this run has 0.8"), std::string::npos) << e;
    OptimizerState wrong_shape = good;
    wrong_shape.tensors["y.lora_A.weight.m"] = at::zeros({8, 700});
    e = error_of([&] { opt.state_load(wrong_shape, "ckpt"); });
    EXPECT_NE(e.find("'y.lora_A.weight.m' is Float [8, 700], expected float32 [700, 8]"), std::string::npos) << e;
    OptimizerState extra = good;
    extra.tensors["z.m"] = at::zeros({1});
    e = error_of([&] { opt.state_load(extra, "ckpt"); });
    EXPECT_NE(e.find("holds 'z.m'"), std::string::npos) << e;

    Tensors r0 = make_run(5);
    TSignSgdOptimizer plain(r0.pairs(), TSignSgdOptions{}, names());
    e = error_of([&] { plain.state_load(good, "ckpt"); });
    EXPECT_NE(e.find("made with --tsign-momentum 0.8, this run has 0"), std::string::npos) << e;

    for (const double bad : {-0.1, 1.0, std::nan("")}) {
        TSignSgdOptions ob;
        ob.momentum = bad;
        e = error_of([&] { TSignSgdOptimizer x(r0.pairs(), ob); });
        EXPECT_NE(e.find("momentum must lie in [0, 1)"), std::string::npos) << bad << ": " << e;
    }
}

}  // namespace
