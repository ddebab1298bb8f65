// LoTA-QAF merge (DESIGN §1 "Merge"): lota_merge on a packed GPTQ layer gives codes Q + M on the
// grid, repacked with the same bit width, plus offset F; its dequantized weight (the inference
// kernel's dequantize) equals the training-time W' bit for bit, and so do the layer outputs.
// adapter::LotaLinear (training path) against the merged QuantLinear (inference path).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "lota_test_util.h"
#include "quant/lota.h"
#include "adapter/lota_grad.h"
#include "quant/lota_merge.h"
#include "adapter/lota_linear.h"
#include "model/quant_linear.h"
#include "quant/quantized_weight.h"
#include "train/tsignsgd.h"
#include "util/check.h"

using namespace lota::adapter;
using namespace lota::quant;
using namespace lota_test;

namespace {

struct Packed {
    QuantizedWeight qw;
    at::Tensor q;  // int32 [K, N]
};

Packed make_packed(int64_t K, int64_t N, int bits, int group_size, bool act_order, at::Generator& gen) {
    Packed p;
    const int64_t maxq = (1 << bits) - 1;
    const int64_t g = group_size == -1 ? K : group_size, G = K / g;
    p.q = rand_codes(K, N, maxq, gen);
    QuantizedWeight& qw = p.qw;
    qw.bits = bits;
    qw.group_size = group_size;
    qw.in_features = K;
    qw.out_features = N;
    qw.qweight = pack_codes(p.q, bits);
    qw.zeros = at::randint(0, maxq + 1, {G, N}, gen, at::TensorOptions().dtype(at::kInt));
    qw.scales = rand_scales(G, N, gen);
    qw.g_idx = act_order ? act_order_g_idx(K, g, gen) : at::arange(K, at::kInt).div(g, "floor").to(at::kInt);
    return p;
}

}  // namespace

TEST(LotaMerge, MergedCodesAndWeightsAreExact) {
    struct Case { int64_t K, N; int bits, group_size; bool act_order; int64_t r; double omega; };
    const Case cases[] = {
        {128, 24, 4, 32, true, 2, 1.5},
        {128, 24, 4, 32, false, 4, 3.0},
        {96, 16, 3, 32, true, 2, 1.5},     // 3-bit: codes straddle words
        {64, 20, 2, 16, true, 3, 2.25},    // 2-bit: most codes at the grid edges
        {64, 12, 8, -1, false, 2, 1.5},    // 8-bit, per-channel
    };
    at::Generator gen = make_gen(501);
    for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "bits=" << c.bits << " g=" << c.group_size << " act=" << c.act_order);
        const Packed base = make_packed(c.K, c.N, c.bits, c.group_size, c.act_order, gen);
        const QuantizedWeight& qw = base.qw;
        ASSERT_TRUE(at::equal(unpack_codes(qw).to(at::kInt), base.q)) << "pack round trip";
        const at::Tensor a_t = rand_ternary({c.r, c.K}, gen), b_t = rand_ternary({c.N, c.r}, gen);

        const QuantizedWeight merged = lota_merge(qw, a_t, b_t, c.omega);
        const LotaMergeTerms pm = lota_merge_reference(a_t, b_t, base.q, qw.g_idx, qw.n_groups(), c.omega, qw.maxq());
        ASSERT_GT(pm.markers.abs().sum().item<int64_t>(), 0) << "test needs markers that fire";

        EXPECT_EQ(merged.bits, qw.bits);
        EXPECT_EQ(merged.qweight.sizes(), qw.qweight.sizes());
        EXPECT_EQ(merged.qweight.scalar_type(), at::kInt);
        EXPECT_NO_THROW(quantized_weight_check(merged, "merged"));
        const at::Tensor codes = unpack_codes(merged).to(at::kInt);
        expect_bitwise_equal(codes, base.q + pm.markers.to(at::kInt), "merged codes Q + M");
        EXPECT_GE(codes.min().item<int64_t>(), 0);
        EXPECT_LE(codes.max().item<int64_t>(), qw.maxq());
        expect_bitwise_equal(merged.offset, pm.offset, "merged offset F");
        EXPECT_FALSE(qw.offset.defined()) << "the input layer must not be modified";

        // Training-time W' (lota_dequant_reference of unpacked Q, M, F) vs the inference dequantize of
        // the merged layer.
        const at::Tensor w_train = lota_dequant_reference(base.q, pm.markers, qw.zeros, qw.scales, pm.offset, qw.g_idx);
        const at::Tensor w_merged = dequantize(merged, at::kFloat);
        expect_bitwise_equal(w_merged, w_train, "dequantize(merged) vs training W'");

        // Layer outputs: training forward (lota_linear on the merged weight) vs merged inference.
        const at::Tensor x = at::randn({5, c.K}, gen);
        LotaTrainState state = lota_train_state_init(a_t, b_t, qw.scales, qw.g_idx, qw.n_groups(), c.omega);
        const at::Tensor y_train = lota_linear(x, w_train.t(), at::Tensor(), state);
        at::Tensor y_merged;
        {
            at::NoGradGuard no_grad;
            y_merged = at::linear(x, w_merged.t());
        }
        expect_bitwise_equal(y_train.detach(), y_merged, "training vs merged layer output");
    }
}

TEST(LotaMerge, ZeroBMergeIsIdentity) {
    at::Generator gen = make_gen(511);
    const Packed base = make_packed(64, 16, 4, 32, true, gen);
    const QuantizedWeight merged = lota_merge(base.qw, lota_init_a(8, 64, gen), lota_init_b(16, 8), 6.0);
    EXPECT_TRUE(at::equal(merged.qweight, base.qw.qweight));
    EXPECT_EQ(merged.offset.abs().sum().item<double>(), 0.0);
    expect_bitwise_equal(dequantize(merged, at::kFloat), dequantize(base.qw, at::kFloat), "W' with B = 0");
}

TEST(LotaMerge, RejectsDoubleMergeAndBadShapes) {
    at::Generator gen = make_gen(521);
    const Packed base = make_packed(64, 16, 4, 32, true, gen);
    const at::Tensor a_t = rand_ternary({2, 64}, gen), b_t = rand_ternary({16, 2}, gen);
    const QuantizedWeight merged = lota_merge(base.qw, a_t, b_t, 1.5);
    EXPECT_THROW(lota_merge(merged, a_t, b_t, 1.5), lota::Error);
    EXPECT_THROW(lota_merge(base.qw, rand_ternary({2, 32}, gen), b_t, 1.5), lota::Error);
    EXPECT_THROW(lota_merge(base.qw, a_t, rand_ternary({8, 2}, gen), 1.5), lota::Error);
}

TEST(LotaLinear, TrainingForwardIsMergedInferenceAndGradsFlow) {
    at::Generator gen = make_gen(531);
    Packed base = make_packed(128, 24, 4, 32, true, gen);
    base.qw.bias = at::randn({24}, gen);
    const at::Tensor a_t = rand_ternary({2, 128}, gen), b_t = rand_ternary({24, 2}, gen);
    const double omega = 1.5;
    lota::adapter::LotaLinear layer(base.qw, a_t.clone(), b_t.clone(), omega);
    EXPECT_EQ(layer.kind(), "gptq+lota");
    const at::Tensor x = at::randn({2, 3, 128}, gen).requires_grad_(true);
    const at::Tensor R = at::randn({2, 3, 24}, gen);
    const at::Tensor y = layer.forward(x);
    torch::autograd::backward({(y * R).sum()});

    // Training forward == merged-model inference forward, bit for bit (same dequant kernel, same GEMM).
    // These 6 rows would take the decode-sized packed-code kernel (another summation order, checked
    // against float64 in test_quant_gemv); the GEMM path is the one training shares.
    lota::model::QuantLinearOptions gemm_only;
    gemm_only.gemv_max_rows = 0;
    lota::model::QuantLinear inference(lota_merge(base.qw, a_t, b_t, omega), nullptr, gemm_only);
    at::Tensor y_inf;
    {
        at::NoGradGuard no_grad;
        y_inf = inference.forward(x.detach());
    }
    expect_bitwise_equal(y.detach(), y_inf, "LotaLinear vs merged QuantLinear output");

    // Gradients: same as the dense reference op on the same W'.
    const LotaMergeTerms pm = lota_merge_reference(a_t, b_t, base.q, base.qw.g_idx, base.qw.n_groups(), omega, 15);
    const at::Tensor w_hat =
        lota_dequant_reference(base.q, pm.markers, base.qw.zeros, base.qw.scales, pm.offset, base.qw.g_idx);
    LotaTrainState ref = lota_train_state_init(a_t, b_t, base.qw.scales, base.qw.g_idx, base.qw.n_groups(), omega);
    const at::Tensor x2 = x.detach().clone().requires_grad_(true);
    torch::autograd::backward({(lota_linear(x2, w_hat.t(), base.qw.bias, ref) * R).sum()});
    expect_bitwise_equal(layer.grad_a(), ref.grad_a, "LotaLinear dA");
    expect_bitwise_equal(layer.grad_b(), ref.grad_b, "LotaLinear dB");
    expect_close(x.grad(), x2.grad(), 1e-6, 1e-6, "LotaLinear dx");
    EXPECT_GT(layer.grad_b().abs().max().item<double>(), 0.0);

    // An in-place t-SignSGD step changes the adapter; the next forward re-merges automatically.
    const lota::train::TSignSgdStats st =
        lota::train::tsignsgd_step({{layer.lora_a(), layer.grad_a()}, {layer.lora_b(), layer.grad_b()}}, 1, 10);
    ASSERT_GT(st.n_changed, 0);
    layer.zero_grad();
    EXPECT_EQ(layer.grad_a().abs().sum().item<double>(), 0.0);
    at::Tensor y_new, y_new_ref;
    {
        at::NoGradGuard no_grad;
        y_new = layer.forward(x.detach());
        y_new_ref = lota::model::QuantLinear(lota_merge(base.qw, layer.lora_a(), layer.lora_b(), omega)).forward(x.detach());
    }
    expect_bitwise_equal(y_new, y_new_ref, "re-merged after the optimizer step");
    EXPECT_FALSE(at::equal(y_new, y_inf)) << "the step should change the layer";

    // First layer over frozen inputs: x needs no grad, adapter grads still accumulate.
    const at::Tensor y3 = layer.forward(x.detach());
    ASSERT_TRUE(y3.requires_grad());
    torch::autograd::backward({(y3 * R).sum()});
    EXPECT_GT(layer.grad_b().abs().max().item<double>(), 0.0);
}
