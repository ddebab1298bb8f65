// LoTA-QAF forward math (DESIGN §1): init, P, markers and their grid-edge masks, the offset F
// against an independent float64 formula, W', act-order g_idx. Fresh seeded inputs; exact checks.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "lota_test_util.h"
#include "quant/lota.h"
#include "util/check.h"

using namespace lota::quant;
using namespace lota_test;

namespace {

// Independent references written with plain loops over accessors (no ATen reductions).

at::Tensor ref_delta_w(const at::Tensor& a_t, const at::Tensor& b_t) {
    const int64_t r = a_t.size(0), K = a_t.size(1), N = b_t.size(0);
    auto a = a_t.accessor<int8_t, 2>();
    auto b = b_t.accessor<int8_t, 2>();
    at::Tensor p = at::zeros({K, N}, at::kInt);
    auto pa = p.accessor<int32_t, 2>();
    for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < r; ++i) pa[k][n] += a[i][k] * b[n][i];
    return p;
}

at::Tensor ref_markers(const at::Tensor& p, const at::Tensor& q, double omega, int64_t maxq) {
    at::Tensor m = at::zeros(p.sizes(), at::kChar);
    auto pa = p.accessor<int32_t, 2>();
    auto qa = q.accessor<int32_t, 2>();
    auto ma = m.accessor<int8_t, 2>();
    for (int64_t k = 0; k < p.size(0); ++k)
        for (int64_t n = 0; n < p.size(1); ++n) {
            if (pa[k][n] > omega && qa[k][n] < maxq) ma[k][n] = 1;
            if (pa[k][n] < -omega && qa[k][n] > 0) ma[k][n] = -1;
        }
    return m;
}

// F[j,n] = (1/(g·ω))·Σ_{k: g_idx[k]=j}(P − ω·M), summed term by term in float64, rounded to fp32.
at::Tensor ref_offset(const at::Tensor& p, const at::Tensor& m, const at::Tensor& g_idx, int64_t G, double omega) {
    const int64_t K = p.size(0), N = p.size(1), g = K / G;
    at::Tensor sum = at::zeros({G, N}, at::kDouble);
    auto sa = sum.accessor<double, 2>();
    auto pa = p.accessor<int32_t, 2>();
    auto ma = m.accessor<int8_t, 2>();
    auto ga = g_idx.accessor<int32_t, 1>();
    for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) sa[ga[k]][n] += static_cast<double>(pa[k][n]) - omega * ma[k][n];
    at::Tensor f = at::empty({G, N}, at::kFloat);
    auto fa = f.accessor<float, 2>();
    for (int64_t j = 0; j < G; ++j)
        for (int64_t n = 0; n < N; ++n) fa[j][n] = static_cast<float>(sa[j][n] / (static_cast<double>(g) * omega));
    return f;
}

struct Layer {
    int64_t K, N, r, g, G, maxq;
    double omega;
    at::Tensor a_t, b_t, q, z, s, g_idx;
};

Layer make_layer(int64_t K, int64_t N, int64_t r, int64_t g, int bits, double omega, bool act_order, uint64_t seed) {
    at::Generator gen = make_gen(seed);
    Layer l{K, N, r, g, K / g, (1 << bits) - 1, omega, {}, {}, {}, {}, {}, {}};
    l.a_t = rand_ternary({r, K}, gen);
    l.b_t = rand_ternary({N, r}, gen);
    l.q = rand_codes(K, N, l.maxq, gen);
    l.z = at::randint(0, l.maxq + 1, {l.G, N}, gen, at::TensorOptions().dtype(at::kInt));
    l.s = rand_scales(l.G, N, gen);
    l.g_idx = act_order ? act_order_g_idx(K, g, gen) : at::arange(K, at::kInt).div(g, "floor").to(at::kInt);
    return l;
}

}  // namespace

TEST(LotaMergeReference, InitTernarisesKaimingNormal) {
    at::Generator gen1 = make_gen(11), gen2 = make_gen(11);
    const at::Tensor a = lota_init_a(16, 512, gen1);
    ASSERT_EQ(a.scalar_type(), at::kChar);
    ASSERT_EQ(a.sizes(), (at::IntArrayRef{16, 512}));
    EXPECT_TRUE(a.ge(-1).logical_and(a.le(1)).all().item<bool>());
    // δ = 0.75·mean|A| = 0.75·√(2/π)·σ ≈ 0.598σ, so P(|A| > δ) = 2·(1 − Φ(0.598)) ≈ 0.55.
    const double nonzero = a.ne(0).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(nonzero, 0.55, 0.03);
    EXPECT_NEAR(a.to(at::kDouble).mean().item<double>(), 0.0, 0.03);
    EXPECT_TRUE(at::equal(a, lota_init_a(16, 512, gen2))) << "same seed must give the same adapter";
    const at::Tensor b = lota_init_b(24, 16);
    EXPECT_EQ(b.sizes(), (at::IntArrayRef{24, 16}));
    EXPECT_EQ(b.scalar_type(), at::kChar);
    EXPECT_EQ(b.abs().sum().item<int64_t>(), 0);
}

TEST(LotaMergeReference, ZeroBGivesIdentityWeight) {
    for (const bool act_order : {false, true}) {
        Layer l = make_layer(96, 40, 8, 32, 4, 6.0, act_order, 21);
        at::Generator gen = make_gen(22);
        l.a_t = lota_init_a(l.r, l.K, gen);
        l.b_t = lota_init_b(l.N, l.r);
        const LotaMergeTerms pm = lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, l.G, l.omega, l.maxq);
        EXPECT_EQ(pm.markers.abs().sum().item<int64_t>(), 0);
        EXPECT_EQ(pm.offset.abs().sum().item<double>(), 0.0);
        const at::Tensor w_hat = lota_dequant_reference(l.q, pm.markers, l.z, l.s, pm.offset, l.g_idx);
        // W = S·(Q − Z) by loops in float32, the GPTQ definition.
        at::Tensor w = at::empty({l.K, l.N}, at::kFloat);
        auto wa = w.accessor<float, 2>();
        auto qa = l.q.accessor<int32_t, 2>();
        auto za = l.z.accessor<int32_t, 2>();
        const at::Tensor sf = l.s.to(at::kFloat);
        auto sa = sf.accessor<float, 2>();
        auto ga = l.g_idx.accessor<int32_t, 1>();
        for (int64_t k = 0; k < l.K; ++k)
            for (int64_t n = 0; n < l.N; ++n) wa[k][n] = sa[ga[k]][n] * static_cast<float>(qa[k][n] - za[ga[k]][n]);
        expect_bitwise_equal(w_hat, w, "W' with B = 0 vs W");
    }
}

TEST(LotaMergeReference, DeltaWIsExactIntegerProduct) {
    const Layer l = make_layer(200, 33, 64, 40, 4, 48.0, true, 31);
    expect_bitwise_equal(lota_delta_w(l.a_t, l.b_t), ref_delta_w(l.a_t, l.b_t), "P = (B·A)^T");
}

TEST(LotaMergeReference, MarkersRespectGridEdgeMasks) {
    // Small rank so |P| > ω happens often: r = 2, ω = 1.5 fires at |P| = 2; r = 4, ω = 3 only at
    // |P| = 4 (P = ω must not fire: the inequality is strict); r = 3, ω = 2.625 (0.875·r).
    struct Case { int64_t r; double omega; int bits; };
    for (const Case c : {Case{2, 1.5, 4}, Case{4, 3.0, 2}, Case{3, 2.625, 3}, Case{2, 1.5, 8}}) {
        const Layer l = make_layer(64, 48, c.r, 16, c.bits, c.omega, true, 41 + c.r);
        const at::Tensor p = lota_delta_w(l.a_t, l.b_t);
        const at::Tensor m = lota_markers(p, l.q, l.omega, l.maxq);
        expect_bitwise_equal(m, ref_markers(p, l.q, l.omega, l.maxq), "markers");
        // The cases the masks exist for must occur in this input, and be masked.
        const at::Tensor want_up = p.gt(l.omega), want_down = p.lt(-l.omega);
        const at::Tensor top = l.q.eq(l.maxq), bottom = l.q.eq(0);
        ASSERT_GT(want_up.logical_and(top).sum().item<int64_t>(), 0) << "input lacks P > ω at Q = maxq";
        ASSERT_GT(want_down.logical_and(bottom).sum().item<int64_t>(), 0) << "input lacks P < −ω at Q = 0";
        ASSERT_GT(want_up.logical_and(top.logical_not()).sum().item<int64_t>(), 0) << "no +1 markers fire";
        ASSERT_GT(want_down.logical_and(bottom.logical_not()).sum().item<int64_t>(), 0) << "no −1 markers fire";
        EXPECT_EQ(m.masked_select(want_up.logical_and(top)).abs().sum().item<int64_t>(), 0);
        EXPECT_EQ(m.masked_select(want_down.logical_and(bottom)).abs().sum().item<int64_t>(), 0);
        const at::Tensor merged = l.q + m.to(at::kInt);
        EXPECT_GE(merged.min().item<int64_t>(), 0);
        EXPECT_LE(merged.max().item<int64_t>(), l.maxq);
        if (c.omega == 3.0) {
            EXPECT_EQ(m.masked_select(p.eq(3)).abs().sum().item<int64_t>(), 0) << "P = ω fired";
        }
    }
}

TEST(LotaMergeReference, OffsetMatchesFloat64FormulaBitForBit) {
    struct Case { int64_t K, N, r, g; double omega; bool act_order; };
    const Case cases[] = {
        {128, 24, 4, 32, 3.0, false},   // contiguous groups
        {128, 24, 4, 32, 3.0, true},    // act-order: non-contiguous groups
        {96, 17, 3, 96, 2.625, true},   // per-channel (one group, g = K), ω = 0.875·r
        {120, 16, 2, 8, 1.5, true},     // many small groups, markers fire often
        {256, 8, 64, 64, 48.0, true},   // paper-sized rank: markers rare, F carries the signal
    };
    uint64_t seed = 51;
    for (const Case& c : cases) {
        const Layer l = make_layer(c.K, c.N, c.r, c.g, 4, c.omega, c.act_order, seed++);
        const LotaMergeTerms pm = lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, l.G, l.omega, l.maxq);
        const at::Tensor p = ref_delta_w(l.a_t, l.b_t);
        expect_bitwise_equal(pm.markers, ref_markers(p, l.q, l.omega, l.maxq), "markers");
        expect_bitwise_equal(pm.offset, ref_offset(p, pm.markers, l.g_idx, l.G, l.omega), "offset F");
        EXPECT_GT(pm.offset.abs().sum().item<double>(), 0.0) << "F should be nonzero for random B";
        EXPECT_EQ(pm.offset.scalar_type(), at::kFloat);
        EXPECT_EQ(pm.offset.sizes(), (at::IntArrayRef{l.G, l.N}));
    }
}

TEST(LotaMergeReference, ActOrderIsRowPermutationInvariant) {
    // Permuting the rows of A, Q and g_idx together permutes M's rows and leaves F unchanged.
    const Layer l = make_layer(64, 20, 2, 16, 4, 1.5, true, 61);
    at::Generator gen = make_gen(62);
    const at::Tensor perm = at::randperm(l.K, gen, at::kLong);
    const LotaMergeTerms pm = lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, l.G, l.omega, l.maxq);
    const LotaMergeTerms pp =
        lota_merge_reference(l.a_t.index_select(1, perm).contiguous(), l.b_t, l.q.index_select(0, perm),
                             l.g_idx.index_select(0, perm), l.G, l.omega, l.maxq);
    expect_bitwise_equal(pp.markers, pm.markers.index_select(0, perm), "permuted markers");
    expect_bitwise_equal(pp.offset, pm.offset, "offset under row permutation");
}

TEST(LotaMergeReference, DequantFormulaOrder) {
    // W' = S·(float(Q + M − Z) + F) in float32, exactly this order of operations.
    const Layer l = make_layer(48, 12, 2, 16, 4, 1.5, true, 71);
    const LotaMergeTerms pm = lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, l.G, l.omega, l.maxq);
    const at::Tensor w_hat = lota_dequant_reference(l.q, pm.markers, l.z, l.s, pm.offset, l.g_idx);
    at::Tensor ref = at::empty({l.K, l.N}, at::kFloat);
    auto ra = ref.accessor<float, 2>();
    auto qa = l.q.accessor<int32_t, 2>();
    auto ma = pm.markers.accessor<int8_t, 2>();
    auto za = l.z.accessor<int32_t, 2>();
    auto fa = pm.offset.accessor<float, 2>();
    const at::Tensor sf = l.s.to(at::kFloat);
    auto sa = sf.accessor<float, 2>();
    auto ga = l.g_idx.accessor<int32_t, 1>();
    for (int64_t k = 0; k < l.K; ++k)
        for (int64_t n = 0; n < l.N; ++n) {
            const int32_t j = ga[k];
            const float inner = static_cast<float>(qa[k][n] + ma[k][n] - za[j][n]) + fa[j][n];
            ra[k][n] = sa[j][n] * inner;
        }
    expect_bitwise_equal(w_hat, ref, "W'");
}

TEST(LotaMergeReference, RejectsBadInputs) {
    const Layer l = make_layer(32, 8, 2, 8, 4, 1.5, true, 81);
    // A group with 9 rows and one with 7.
    at::Tensor bad = l.g_idx.clone();
    const int64_t k0 = bad.eq(0).nonzero()[0][0].item<int64_t>();
    bad[k0] = 1;
    EXPECT_THROW(lota_merge_reference(l.a_t, l.b_t, l.q, bad, l.G, l.omega, l.maxq), lota::Error);
    EXPECT_THROW(lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, 3, l.omega, l.maxq), lota::Error);   // K % G != 0
    EXPECT_THROW(lota_merge_reference(l.a_t, l.b_t, l.q, l.g_idx, l.G, 0.0, l.maxq), lota::Error);     // ω ≤ 0
    EXPECT_THROW(lota_merge_reference(l.a_t.to(at::kFloat), l.b_t, l.q, l.g_idx, l.G, 1.5, l.maxq), lota::Error);
    EXPECT_THROW(lota_merge_reference(l.a_t, l.b_t.t().contiguous(), l.q, l.g_idx, l.G, 1.5, l.maxq), lota::Error);
    EXPECT_THROW(lota_merge_reference(l.a_t, l.b_t, l.q.t(), l.g_idx, l.G, 1.5, l.maxq), lota::Error);
    at::Tensor out_of_range = l.g_idx.clone();
    out_of_range[0] = static_cast<int>(l.G);
    EXPECT_THROW(lota_group_size(out_of_range, l.G), lota::Error);
}
