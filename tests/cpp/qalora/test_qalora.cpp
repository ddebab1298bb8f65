// QA-LoRA (quant/qalora.h, adapter/qalora_linear.h) against its formulas in float64:
//   - forward: y = x·W + s·pool(x)·Aᵀ·Bᵀ, pool = c·(sum of each group), for mean and sum pooling; B = 0 is
//     the base layer bit for bit;
//   - gradients of A, B and x: the closed-form float64 gradients of that formula, and central finite
//     differences of the layer itself (so the gradient path is the gradient of the value the layer returns);
//   - merge: codes unchanged, offset F = qalora_offset, dequantized merged weight = W + broadcast group offset
//     D, equal to the official merge.py's zero-point update; the adapter layer and the merged layer give the
//     same outputs bit for bit;
//   - refusals: per-channel, act-order and already-merged layers.
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../lota/lota_test_util.h"
#include "adapter/qalora_linear.h"
#include "model/quant_linear.h"
#include "quant/lota.h"
#include "quant/qalora.h"
#include "quant/quantized_weight.h"
#include "util/check.h"

using lota::adapter::QaLoraLinear;
using lota::quant::QaLoraPooling;
using lota::quant::QuantizedWeight;
using namespace lota_test;

namespace {

/// float32 outputs of a K ≤ 256 reduction against a float64 reference: ~K·2⁻²⁴ relative to the terms.
constexpr double ATOL_F32 = 2e-5, RTOL_F32 = 1e-5;

/// The base weight W = S·(Q − Z) in float64, [K, N].
at::Tensor base_weight_f64(const QuantizedWeight& qw) {
    const at::Tensor idx = qw.g_idx.to(at::kLong);
    const at::Tensor q = lota::quant::unpack_codes(qw).to(at::kDouble);
    return (q - qw.zeros.to(at::kDouble).index_select(0, idx)) * qw.scales.to(at::kDouble).index_select(0, idx);
}

/// pool(x) in float64: c·Σ over each group of g consecutive features, [..., K/g].
at::Tensor pool_f64(const at::Tensor& x, int64_t g, QaLoraPooling pooling) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() /= g;
    shape.push_back(g);
    const at::Tensor sum = x.to(at::kDouble).reshape(shape).sum(-1);
    return pooling == QaLoraPooling::MEAN ? sum / (double)g : sum;
}

/// The adapter's weight shift D [G, N] = s·c·(B·A)ᵀ in float64.
at::Tensor delta_f64(const at::Tensor& a, const at::Tensor& b, double s, int64_t g, QaLoraPooling pooling) {
    const double c = pooling == QaLoraPooling::MEAN ? 1.0 / (double)g : 1.0;
    return at::matmul(b.to(at::kDouble), a.to(at::kDouble)).t() * (s * c);
}

struct LayerAndAdapter {
    QuantizedWeight qw;
    at::Tensor a, b;  // float32 [r, G], [N, r]
};

LayerAndAdapter make_setup(int64_t K, int64_t N, int bits, int64_t g, int64_t r, uint64_t seed, bool bias = false) {
    at::Generator gen = make_gen(seed);
    LayerAndAdapter s;
    s.qw = make_layer(K, N, bits, g, false, gen);
    if (bias) s.qw.bias = at::randn({N}, gen);
    s.a = at::randn({r, K / g}, gen) * 0.3;
    s.b = at::randn({N, r}, gen) * 0.3;
    return s;
}

}  // namespace

TEST(QaLora, ForwardEqualsPooledFormula) {
    struct Case { int64_t K, N; int bits; int64_t g, r; QaLoraPooling pooling; bool bias; };
    const Case cases[] = {
        {128, 24, 4, 32, 4, QaLoraPooling::MEAN, false},
        {128, 24, 4, 32, 4, QaLoraPooling::SUM, true},
        {192, 20, 2, 64, 3, QaLoraPooling::MEAN, false},
        {96, 16, 3, 32, 2, QaLoraPooling::MEAN, true},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "K=" << c.K << " bits=" << c.bits << " g=" << c.g << " pooling="
                                          << lota::quant::qalora_pooling_name(c.pooling));
        const LayerAndAdapter st = make_setup(c.K, c.N, c.bits, c.g, c.r, 11 + c.K, c.bias);
        const double s = 0.75;
        QaLoraLinear layer(st.qw, st.a, st.b, s, c.pooling);
        const at::Tensor x = at::randn({2, 3, c.K}, make_gen(7));
        at::NoGradGuard no_grad;
        const at::Tensor y = layer.forward(x);
        at::Tensor ref = at::matmul(x.to(at::kDouble), base_weight_f64(st.qw)) +
                         at::matmul(at::matmul(pool_f64(x, c.g, c.pooling), st.a.to(at::kDouble).t()),
                                    st.b.to(at::kDouble).t()) * s;
        if (c.bias) ref = ref + st.qw.bias.to(at::kDouble);
        expect_close(y, ref, ATOL_F32, RTOL_F32, "QA-LoRA forward vs float64 pool -> A -> B formula");

        // B = 0: F = 0, and S·(Q − Z + 0) is S·(Q − Z) bit for bit, so the layer is the base layer.
        QaLoraLinear zero(st.qw, st.a, at::zeros_like(st.b), s, c.pooling);
        lota::model::QuantLinear base(st.qw);
        expect_bitwise_equal(zero.forward(x), base.forward(x), "B = 0 vs the base layer");
    }
}

TEST(QaLora, GradientsMatchFloat64FormulaAndFiniteDifferences) {
    const int64_t K = 128, N = 24, g = 32, r = 4;
    const double s = 0.5;
    for (const QaLoraPooling pooling : {QaLoraPooling::MEAN, QaLoraPooling::SUM}) {
        SCOPED_TRACE(lota::quant::qalora_pooling_name(pooling));
        const LayerAndAdapter st = make_setup(K, N, 4, g, r, 23);
        QaLoraLinear layer(st.qw, st.a, st.b, s, pooling);
        const at::Tensor x = at::randn({5, K}, make_gen(3)).requires_grad_(true);
        const at::Tensor R = at::randn({5, N}, make_gen(4));  // loss = Σ y ⊙ R, so ∂L/∂y = R
        (layer.forward(x) * R).sum().backward();

        // Closed form in float64: z = s·p·Aᵀ·Bᵀ with p = pool(x): ∂B = s·Rᵀ·(p·Aᵀ), ∂A = s·(R·B)ᵀ·p,
        // and ∂x = R·W'ᵀ through the adapted weight W' = W + D (broadcast over each group's rows).
        const at::Tensor p = pool_f64(x.detach(), g, pooling), R64 = R.to(at::kDouble);
        const at::Tensor a64 = st.a.to(at::kDouble), b64 = st.b.to(at::kDouble);
        const at::Tensor grad_b = at::matmul(R64.t(), at::matmul(p, a64.t())) * s;
        const at::Tensor grad_a = at::matmul(at::matmul(R64, b64).t(), p) * s;
        const at::Tensor w_adapted =
            base_weight_f64(st.qw) + delta_f64(st.a, st.b, s, g, pooling).repeat_interleave(g, 0);
        const at::Tensor grad_x = at::matmul(R64, w_adapted.t());
        expect_close(layer.lora_a().grad(), grad_a, 1e-4, 1e-5, "dL/dA");
        expect_close(layer.lora_b().grad(), grad_b, 1e-4, 1e-5, "dL/dB");
        expect_close(x.grad(), grad_x, 1e-4, 1e-5, "dL/dx");

        // Central differences of the layer's own value (the merged forward) at a few entries. The loss is
        // linear in A (and in B), so the difference is exact up to float32 rounding of y (~1e-6 of |y|).
        at::NoGradGuard no_grad;
        const double eps = 1e-2;
        const at::Tensor xd = x.detach();
        for (const auto& [ti, i, j] : {std::tuple<int, int64_t, int64_t>{0, 1, 2}, {0, 3, 0}, {1, 7, 1}, {1, 20, 3}}) {
            at::Tensor& t = ti == 0 ? layer.lora_a() : layer.lora_b();
            const float old = t[i][j].item<float>();
            t[i][j] = old + eps;
            const double up = (layer.forward(xd) * R).sum().item<double>();
            t[i][j] = old - eps;
            const double down = (layer.forward(xd) * R).sum().item<double>();
            t[i][j] = old;
            const double fd = (up - down) / (2 * eps);
            const double an = (ti == 0 ? grad_a : grad_b)[i][j].item<double>();
            EXPECT_NEAR(fd, an, 2e-3 + 2e-3 * std::abs(an)) << (ti == 0 ? "A" : "B") << "[" << i << "][" << j << "]";
        }
    }
}

TEST(QaLora, MergeIsBaseWeightPlusGroupOffsetAsInTheOfficialScript) {
    const int64_t g = 32;
    const double s = 16.0 / 64.0;  // the official merge.py's `scale` (lora_alpha 16, r 64)
    const LayerAndAdapter st = make_setup(128, 24, 4, g, 4, 31);
    const QuantizedWeight merged = lota::quant::qalora_merge(st.qw, st.a, st.b, s, QaLoraPooling::MEAN);
    EXPECT_TRUE(at::equal(merged.qweight, st.qw.qweight)) << "QA-LoRA moves no code";
    EXPECT_TRUE(at::equal(merged.zeros, st.qw.zeros));
    EXPECT_FALSE(st.qw.offset.defined()) << "the input layer must not be modified";
    ASSERT_TRUE(merged.offset.defined());
    EXPECT_EQ(merged.offset.scalar_type(), at::kFloat);
    expect_bitwise_equal(merged.offset,
                         lota::quant::qalora_offset(st.a, st.b, st.qw.scales, s, QaLoraPooling::MEAN, g),
                         "merged offset = qalora_offset");

    // The dequantized merged weight is the one dequant formula with F (lota_dequant_reference), bit for bit...
    const at::Tensor w = lota::quant::dequantize(merged, at::kFloat);
    const at::Tensor q = lota::quant::unpack_codes(st.qw);
    expect_bitwise_equal(w, lota::quant::lota_dequant_reference(q, {}, st.qw.zeros, st.qw.scales, merged.offset,
                                                                 st.qw.g_idx),
                         "dequantize(merged) vs lota_dequant_reference");
    // ... and W_q + the broadcast group offset D = s·(1/g)·(BA)ᵀ of the formula.
    const at::Tensor d = delta_f64(st.a, st.b, s, g, QaLoraPooling::MEAN);
    expect_close(w, base_weight_f64(st.qw) + d.repeat_interleave(g, 0), 1e-6, 1e-6, "merged W vs W_q + D");

    // The official merge.py: qzeros -= (lora_B @ lora_A).t() * scale / group_size / scales, i.e. a float
    // zero point Z' = Z − F. Dequantizing with it, S·(Q − Z'), is S·(Q − Z + F): the same weight.
    const at::Tensor idx = st.qw.g_idx.to(at::kLong);
    const at::Tensor z_official = st.qw.zeros.to(at::kDouble) -
                                  at::matmul(st.b.to(at::kDouble), st.a.to(at::kDouble)).t() * s / (double)g /
                                      st.qw.scales.to(at::kDouble);
    expect_close(merged.offset, st.qw.zeros.to(at::kDouble) - z_official, 1e-6, 1e-6, "F vs Z - Z'(merge.py)");
    const at::Tensor w_official = (q.to(at::kDouble) - z_official.index_select(0, idx)) *
                                  st.qw.scales.to(at::kDouble).index_select(0, idx);
    expect_close(w, w_official, 1e-6, 1e-6, "merged W vs merge.py's dequantized weight");

    // SUM pooling (the paper's Algorithm 1) is MEAN with s multiplied by g.
    const QuantizedWeight merged_sum = lota::quant::qalora_merge(st.qw, st.a, st.b, s / (double)g, QaLoraPooling::SUM);
    expect_close(merged_sum.offset, merged.offset, 0, 1e-6, "sum pooling with s/g vs mean pooling with s");
}

TEST(QaLora, AdapterLayerAndMergedLayerAgreeBitForBit) {
    const LayerAndAdapter st = make_setup(128, 24, 4, 32, 4, 41, true);
    const double s = 2.0;
    QaLoraLinear layer(st.qw, st.a, st.b, s, QaLoraPooling::MEAN);
    lota::model::QuantLinear merged(lota::quant::qalora_merge(st.qw, st.a, st.b, s, QaLoraPooling::MEAN));
    // 21 rows: above QuantLinearOptions::gemv_max_rows, so inference and training take the same
    // dequantize-and-GEMM path (decode-sized inputs read the packed codes, a different summation order).
    const at::Tensor x = at::randn({3, 7, 128}, make_gen(5));
    at::Tensor y_merged;
    {
        at::NoGradGuard no_grad;
        y_merged = merged.forward(x);
        expect_bitwise_equal(layer.forward(x), y_merged, "inference: adapter layer vs merged layer");
    }
    // Training mode: the gradient path adds z − detach(z) = 0, so the value is unchanged.
    const at::Tensor y_train = layer.forward(x.clone().requires_grad_(true));
    expect_bitwise_equal(y_train.detach(), y_merged, "training forward vs merged layer");
    // An in-place update of A (what AdamW does) re-merges at the next forward.
    {
        at::NoGradGuard no_grad;
        layer.lora_a().add_(0.1);
        const at::Tensor a2 = st.a + 0.1;
        lota::model::QuantLinear merged2(lota::quant::qalora_merge(st.qw, a2, st.b, s, QaLoraPooling::MEAN));
        expect_bitwise_equal(layer.forward(x), merged2.forward(x), "after an in-place update of A");
    }
}

TEST(QaLora, RefusesPerChannelActOrderAndMergedLayers) {
    at::Generator gen = make_gen(51);
    const auto error_of = [](const QuantizedWeight& qw) {
        try {
            lota::quant::qalora_check_layer(qw, "layer X");
        } catch (const lota::Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    QuantizedWeight per_channel = make_layer(64, 8, 4, 64, false, gen);
    per_channel.group_size = -1;
    EXPECT_NE(error_of(per_channel).find("layer X: QA-LoRA needs a group-wise quantized model"), std::string::npos);
    const QuantizedWeight act = make_layer(128, 8, 4, 32, true, gen);
    EXPECT_NE(error_of(act).find("an act-order model, non-contiguous groups"), std::string::npos) << error_of(act);
    QuantizedWeight merged = make_layer(128, 8, 4, 32, false, gen);
    EXPECT_EQ(error_of(merged), "");
    merged.offset = at::zeros({4, 8});
    EXPECT_NE(error_of(merged).find("already carries a per-group offset"), std::string::npos);
    EXPECT_THROW(QaLoraLinear(act, at::zeros({2, 4}), at::zeros({8, 2}), 1.0, QaLoraPooling::MEAN), lota::Error);
    const QuantizedWeight ok = make_layer(128, 8, 4, 32, false, gen);
    EXPECT_THROW(QaLoraLinear(ok, at::zeros({2, 128}), at::zeros({8, 2}), 1.0, QaLoraPooling::MEAN), lota::Error)
        << "lora_A must be [r, K/g], not [r, K]";
}
