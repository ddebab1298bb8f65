// LoTA-QAF backward (DESIGN §1): the optimized path (merged W', Gw = xᵀ·∂y reduced to ∂A, ∂B
// by lota_backward, via the lota_linear / lota_grad_tap autograd ops) against
//   (1) LibTorch autograd through DESIGN's equations in float64 (STE through M, M detached in F);
//   (2) central finite differences of the STE surrogate (M held at its value) in float64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "lota_test_util.h"
#include "quant/lota.h"
#include "adapter/lota_grad.h"

using namespace lota::adapter;
using namespace lota::quant;
using namespace lota_test;

namespace {

// Note [backward tolerance]
// The optimized path runs in float32; the references in float64. Each gradient element is a sum
// of products through at most T (Gw), g (group sums) and N or K (the adapter GEMMs) terms, so its
// float32 error is bounded by about (T + g + max(N, K))·2⁻²⁴ ≈ 100·6e-8 = 6e-6 relative to the
// sum of |terms|; with random signs that sum is within a small factor of max|grad|. 2e-5·max|ref|
// holds with margin, while a wrong term (a missing 1/(g·ω) group sum, a transposed B, a missing S)
// changes the gradients by 1e-2 or more of max|ref|.
constexpr double kGradRelTol = 2e-5;

struct Problem {
    int64_t T, K, N, r, g, G, maxq;
    double omega;
    at::Tensor a_t, b_t, q, z, s, g_idx, x, R;
};

Problem make_setup(int64_t T, int64_t K, int64_t N, int64_t r, int64_t g, int bits, double omega, uint64_t seed) {
    at::Generator gen = make_gen(seed);
    Problem st{T, K, N, r, g, K / g, (1 << bits) - 1, omega, {}, {}, {}, {}, {}, {}, {}, {}};
    st.a_t = rand_ternary({r, K}, gen);
    st.b_t = rand_ternary({N, r}, gen);
    st.q = rand_codes(K, N, st.maxq, gen);
    st.z = at::randint(0, st.maxq + 1, {st.G, N}, gen, at::TensorOptions().dtype(at::kInt));
    st.s = rand_scales(st.G, N, gen);
    st.g_idx = act_order_g_idx(K, g, gen);
    st.x = at::randn({T, K}, gen);
    st.R = at::randn({T, N}, gen);
    return st;
}

struct RefGrads {
    at::Tensor da, db, dx, w_hat;
};

// DESIGN §1 written with autograd in float64: P = (B·A)ᵀ, M by the masks, M_ste = P + (M − P).detach(),
// F = groupsum(P − ω·M.detach())/(g·ω), W' = S·(Q + M_ste − Z + F), y = x·W', L = Σ y ⊙ R.
RefGrads autograd_reference(const Problem& st) {
    const at::Tensor a = st.a_t.to(at::kDouble).requires_grad_(true);
    const at::Tensor b = st.b_t.to(at::kDouble).requires_grad_(true);
    const at::Tensor x = st.x.to(at::kDouble).requires_grad_(true);
    const at::Tensor idx = st.g_idx.to(at::kLong);
    const at::Tensor p = at::mm(b, a).t();  // [K, N]
    const at::Tensor q = st.q.to(at::kDouble);
    const at::Tensor pd = p.detach();
    const at::Tensor m = at::where(pd.gt(st.omega).logical_and(q.lt(st.maxq)), 1.0,
                                   at::where(pd.lt(-st.omega).logical_and(q.gt(0)), -1.0, 0.0));
    const at::Tensor m_ste = p + (m - p).detach();
    const at::Tensor f = at::zeros({st.G, st.N}, at::kDouble).index_add(0, idx, p - st.omega * m.detach()) /
                         (static_cast<double>(st.g) * st.omega);
    const at::Tensor s_rows = st.s.to(at::kDouble).index_select(0, idx);
    const at::Tensor z_rows = st.z.to(at::kDouble).index_select(0, idx);
    const at::Tensor w = s_rows * (q + m_ste - z_rows + f.index_select(0, idx));
    const at::Tensor loss = (at::mm(x, w) * st.R.to(at::kDouble)).sum();
    torch::autograd::backward({loss});
    return {a.grad(), b.grad(), x.grad(), w.detach()};
}

// L(A, B) of the STE surrogate: M frozen at m0, so W_s = S·(Q − Z + m0 + (P − P0) + F(P)), F with m0.
double surrogate_loss(const Problem& st, const at::Tensor& a, const at::Tensor& b, const at::Tensor& p0,
                      const at::Tensor& m0) {
    const at::Tensor idx = st.g_idx.to(at::kLong);
    const at::Tensor p = at::mm(b, a).t();
    const at::Tensor f = at::zeros({st.G, st.N}, at::kDouble).index_add(0, idx, p - st.omega * m0) /
                         (static_cast<double>(st.g) * st.omega);
    const at::Tensor w = st.s.to(at::kDouble).index_select(0, idx) *
                         (st.q.to(at::kDouble) - st.z.to(at::kDouble).index_select(0, idx) + m0 + (p - p0) +
                          f.index_select(0, idx));
    return (at::mm(st.x.to(at::kDouble), w) * st.R.to(at::kDouble)).sum().item<double>();
}

// Central differences at up to kFdSamples random entries each of A and B (all of them for small
// adapters); the returned tensors hold NaN elsewhere and `mask` marks the sampled entries. L is
// affine in each single entry, so the difference is exact up to float64 rounding (~1e-13 here).
constexpr int64_t kFdSamples = 96;

at::Tensor finite_differences(const Problem& st, bool wrt_a, at::Tensor& mask) {
    const at::Tensor a0 = st.a_t.to(at::kDouble), b0 = st.b_t.to(at::kDouble);
    const at::Tensor p0 = at::mm(b0, a0).t();
    const at::Tensor m0 = lota_markers(p0.to(at::kInt), st.q, st.omega, st.maxq).to(at::kDouble);
    const double h = 0.25;
    const at::Tensor base = wrt_a ? a0 : b0;
    at::Generator gen = make_gen(static_cast<uint64_t>(base.numel()));
    const at::Tensor order = at::randperm(base.numel(), gen, at::kLong);
    const int64_t n = std::min<int64_t>(kFdSamples, base.numel());
    at::Tensor fd = at::full(base.sizes(), NAN, at::kDouble);
    mask = at::zeros(base.sizes(), at::kBool);
    for (int64_t s = 0; s < n; ++s) {
        const int64_t i = order[s].item<int64_t>();
        at::Tensor plus = base.clone(), minus = base.clone();
        plus.view({-1})[i] += h;
        minus.view({-1})[i] -= h;
        const double lp = wrt_a ? surrogate_loss(st, plus, b0, p0, m0) : surrogate_loss(st, a0, plus, p0, m0);
        const double lm = wrt_a ? surrogate_loss(st, minus, b0, p0, m0) : surrogate_loss(st, a0, minus, p0, m0);
        fd.view({-1})[i] = (lp - lm) / (2 * h);
        mask.view({-1})[i] = true;
    }
    return fd;
}

void expect_grads(const at::Tensor& got, const at::Tensor& ref, const std::string& what) {
    expect_close(got, ref, kGradRelTol * ref.abs().max().item<double>(), kGradRelTol, what);
}

}  // namespace

TEST(LotaBackward, OptimizedMatchesAutogradAndFiniteDifferences) {
    struct Case { int64_t T, K, N, r, g; int bits; double omega; };
    const Case cases[] = {
        {7, 48, 20, 3, 8, 4, 1.5},     // markers fire often (|P| ≥ 2)
        {5, 64, 24, 2, 16, 2, 1.5},    // 2-bit: many codes at the grid edges
        {9, 40, 12, 4, 40, 3, 3.0},    // per-channel (G = 1), ω = 0.75·r
        {3, 96, 32, 8, 32, 4, 3.5},    // r = 8, non-integer ω: fires at |P| ≥ 4
    };
    uint64_t seed = 101;
    for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "K=" << c.K << " N=" << c.N << " r=" << c.r << " g=" << c.g);
        const Problem st = make_setup(c.T, c.K, c.N, c.r, c.g, c.bits, c.omega, seed++);
        const LotaMergeTerms pm = lota_merge_reference(st.a_t, st.b_t, st.q, st.g_idx, st.G, st.omega, st.maxq);
        ASSERT_GT(pm.markers.abs().sum().item<int64_t>(), 0) << "test needs markers that fire";
        const at::Tensor w_hat = lota_dequant_reference(st.q, pm.markers, st.z, st.s, pm.offset, st.g_idx);  // [K, N]

        LotaTrainState state = lota_train_state_init(st.a_t, st.b_t, st.s, st.g_idx, st.G, st.omega);
        const at::Tensor x = st.x.clone().requires_grad_(true);
        const at::Tensor y = lota_linear(x, w_hat.t(), at::Tensor(), state);
        torch::autograd::backward({(y * st.R).sum()});

        const RefGrads ref = autograd_reference(st);
        expect_close(w_hat, ref.w_hat, 0, 2e-7, "W' (fp32 vs float64 formula; one fp32 rounding each for + F and · S)");
        expect_grads(state.grad_a, ref.da, "dL/dA vs autograd");
        expect_grads(state.grad_b, ref.db, "dL/dB vs autograd");
        expect_grads(x.grad(), ref.dx, "dL/dx vs autograd");

        at::Tensor mask_a, mask_b;
        const at::Tensor fd_a = finite_differences(st, true, mask_a), fd_b = finite_differences(st, false, mask_b);
        const double scale_a = ref.da.abs().max().item<double>(), scale_b = ref.db.abs().max().item<double>();
        expect_close(ref.da.masked_select(mask_a), fd_a.masked_select(mask_a), kGradRelTol * scale_a, kGradRelTol,
                     "autograd dL/dA vs finite differences");
        expect_close(ref.db.masked_select(mask_b), fd_b.masked_select(mask_b), kGradRelTol * scale_b, kGradRelTol,
                     "autograd dL/dB vs finite differences");
        expect_close(state.grad_a.masked_select(mask_a), fd_a.masked_select(mask_a), kGradRelTol * scale_a, kGradRelTol,
                     "dL/dA vs finite differences");
        expect_close(state.grad_b.masked_select(mask_b), fd_b.masked_select(mask_b), kGradRelTol * scale_b, kGradRelTol,
                     "dL/dB vs finite differences");
    }
}

TEST(LotaBackward, GradTapMatchesDenseOpAndAccumulates) {
    const Problem st = make_setup(6, 64, 16, 2, 16, 4, 1.5, 201);
    const LotaMergeTerms pm = lota_merge_reference(st.a_t, st.b_t, st.q, st.g_idx, st.G, st.omega, st.maxq);
    const at::Tensor w_nk = lota_dequant_reference(st.q, pm.markers, st.z, st.s, pm.offset, st.g_idx).t().contiguous();
    const at::Tensor bias = at::randn({st.N});

    LotaTrainState dense = lota_train_state_init(st.a_t, st.b_t, st.s, st.g_idx, st.G, st.omega);
    const at::Tensor x1 = st.x.clone().requires_grad_(true);
    torch::autograd::backward({(lota_linear(x1, w_nk, bias, dense) * st.R).sum()});

    // The tap after an ordinary (autograd-differentiable) linear, as LotaLinear uses it.
    LotaTrainState tap = lota_train_state_init(st.a_t, st.b_t, st.s, st.g_idx, st.G, st.omega);
    const at::Tensor x2 = st.x.clone().requires_grad_(true);
    const at::Tensor y2 = lota_grad_tap(at::linear(x2, w_nk, bias), x2, tap);
    torch::autograd::backward({(y2 * st.R).sum()});
    expect_bitwise_equal(tap.grad_a, dense.grad_a, "tap dA vs dense op dA");
    expect_bitwise_equal(tap.grad_b, dense.grad_b, "tap dB vs dense op dB");
    expect_close(x2.grad(), x1.grad(), 1e-6, 1e-6, "tap dx vs dense op dx");

    // Input without requires_grad (first layer over frozen embeddings): adapter grads still flow,
    // and a second micro-batch adds to the buffers.
    const at::Tensor grad_a1 = tap.grad_a.clone(), grad_b1 = tap.grad_b.clone();
    const at::Tensor y3 = lota_grad_tap(at::linear(st.x, w_nk, bias), st.x, tap);
    ASSERT_TRUE(y3.requires_grad());
    torch::autograd::backward({(y3 * st.R).sum()});
    expect_close(tap.grad_a, grad_a1 * 2, 1e-6, 1e-6, "accumulated dA");
    expect_close(tap.grad_b, grad_b1 * 2, 1e-6, 1e-6, "accumulated dB");
    lota_train_state_zero_grad(tap);
    EXPECT_EQ(tap.grad_a.abs().sum().item<double>(), 0.0);
}

TEST(LotaBackward, ZeroBGivesZeroGradAForAnyLoss) {
    // DESIGN §1: with B = 0 at the start, ∂L/∂A = 0 on the first step, while ∂L/∂B is not zero.
    Problem st = make_setup(4, 32, 8, 4, 8, 4, 3.0, 301);
    at::Generator gen = make_gen(302);
    st.a_t = lota_init_a(st.r, st.K, gen);
    st.b_t = lota_init_b(st.N, st.r);
    const at::Tensor gw = at::mm(st.x.t(), st.R);
    const LotaGrads g = lota_backward(gw, st.s, st.g_idx, st.G, st.omega, st.a_t, st.b_t);
    EXPECT_EQ(g.a_t.abs().max().item<double>(), 0.0);
    EXPECT_GT(g.b_t.abs().max().item<double>(), 0.0);
}

// lota_backward_from_inputs (the CPU path for 2·r < g: no K×N Gw) against lota_backward of Gw = xᵀ·∂y
// formed in float64, for one and several groups, ranks below and above g/2 (the function is exact
// algebra either way; only the choice between them depends on the ratio).
TEST(LotaBackwardFromInputs, EqualsTheGwPath) {
    struct Case { int64_t T, K, N, r, g; };
    for (const Case& c : {Case{7, 64, 48, 4, 64}, Case{33, 128, 80, 2, 32}, Case{16, 96, 24, 16, 32}}) {
        at::Generator gen = make_gen(100 + c.K + c.r);
        const int64_t G = c.K / c.g;
        const at::Tensor a_t = rand_ternary({c.r, c.K}, gen), b_t = rand_ternary({c.N, c.r}, gen);
        const at::Tensor s = rand_scales(G, c.N, gen);
        const at::Tensor x = at::randn({c.T, c.K}, gen), dy = at::randn({c.T, c.N}, gen);
        const at::Tensor g_idx = at::arange(c.K, at::kInt).div(c.g, "floor").to(at::kInt);
        const LotaGroups groups = lota_groups_make(g_idx, G);
        ASSERT_FALSE(groups.perm.defined());
        const double omega = 0.75 * double(c.r);
        const at::Tensor gw = at::mm(x.to(at::kDouble).t(), dy.to(at::kDouble)).to(at::kFloat);
        const LotaGrads want = lota_backward(gw, s, groups, omega, a_t, b_t);
        const LotaGrads got = lota_backward_from_inputs(x, dy, s, groups, omega, a_t, b_t);
        for (const auto& [w, h] : {std::pair{want.a_t, got.a_t}, std::pair{want.b_t, got.b_t}}) {
            ASSERT_EQ(w.sizes(), h.sizes());
            const double scale = w.abs().max().item<double>();
            EXPECT_LE((w - h).abs().max().item<double>(), kGradRelTol * scale)
                << "T " << c.T << " K " << c.K << " N " << c.N << " r " << c.r << " g " << c.g;
        }
        EXPECT_EQ(lota_backward_from_inputs_pays(groups, c.r, c.K), 2 * c.r < c.g);
    }
}
