// QuantLinear (model/quant_linear.h) moved to CUDA: equal to the CPU layer up to GEMM order in
// float32, bfloat16 outputs in bfloat16, and decode-sized inputs (at most the gemv row limit) taken
// by the packed-code kernel with the results of the dequantize-and-GEMM path; batched generation that
// keeps the weights dequantized gives the tokens of dequantizing at every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../quant/gemv_test_util.h"
#include "../quant/tiny_model.h"
#include "../test_dirs.h"
#include "model/generate.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "quant/quantized_weight.h"

using namespace lota;

TEST(QuantLinearCuda, EqualsCpuLayerWithSharedBuffer) {
    at::manual_seed(1);
    const int64_t K = 256, N = 128;
    const quant::QuantizedWeight qw = lota_test::gemv_random_layer(K, N, 3, 64, true, false, true);
    model::QuantLinear lc(qw), lg(qw, std::make_shared<model::DequantBuffer>());
    lg.to(at::Device(at::kCUDA), at::kFloat);
    const torch::NoGradGuard no_grad;
    for (const int64_t T : {1, 7, 40}) {
        const at::Tensor x = at::randn({3, T, K});
        EXPECT_TRUE(at::allclose(lg.forward(x.cuda()).cpu(), lc.forward(x), 1e-4, 1e-4)) << "T " << T;
    }
    lg.to(at::Device(at::kCUDA), at::kBFloat16);
    EXPECT_EQ(lg.forward(at::randn({2, 5, K}).cuda().to(at::kBFloat16)).scalar_type(), at::kBFloat16);
}

TEST(QuantLinearCuda, UsesGemvForDecodeRowsOnly) {
    at::manual_seed(5);
    const quant::QuantizedWeight qw = lota_test::gemv_random_layer(512, 384, 4, 64, false, true, true);
    model::QuantLinear layer(qw);
    layer.to(at::Device(at::kCUDA), at::kBFloat16);
    const torch::NoGradGuard no_grad;
    const at::Tensor x = at::randn({1, 20, 512}).to(at::kBFloat16).cuda();
    const at::Tensor full = layer.forward(x);                          // 20 rows: dequant + GEMM
    const at::Tensor rows = layer.forward(x.narrow(1, 0, 4));          // 4 rows: the kernel
    EXPECT_EQ(rows.sizes(), (std::vector<int64_t>{1, 4, 384}));
    EXPECT_TRUE(at::allclose(rows.to(at::kFloat), full.narrow(1, 0, 4).to(at::kFloat), 2e-2, 2e-2));
    model::QuantLinearOptions no_gemv;
    no_gemv.gemv_max_rows = 0;
    layer.set_options(no_gemv);
    const at::Tensor off = layer.forward(x.narrow(1, 0, 4));
    EXPECT_TRUE(at::allclose(off.to(at::kFloat), full.narrow(1, 0, 4).to(at::kFloat), 1e-2, 1e-2));
}

TEST(QuantLinearCuda, GenerationKeepingWeightsDequantizedGivesTheSameTokens) {
    const auto base = lota_test::fresh_dir("qlcuda", "base"), q4 = lota_test::fresh_dir("qlcuda", "q4");
    lota_test::make_tiny_model(base, q4, 3);
    auto m = model::Transformer::load(q4.string(), {"cuda", "bf16"});
    m->fuse_projections();
    at::manual_seed(4);
    // 20 rows a step: more than the packed-code product takes
    const auto prompts = lota_test::random_prompts(m->config().vocab_size, 20);
    model::GenerateOptions o;
    o.max_new_tokens = 12;
    const torch::NoGradGuard no_grad;
    o.keep_dequantized = false;
    const auto every_step = model::generate(*m, prompts, o);
    const std::vector<model::QuantLinear*> layers = m->quant_linears();
    ASSERT_FALSE(layers.empty());
    // Every quantized layer holds its copy from the first decode step on, and none after the end.
    int64_t tokens_seen = 0, tokens_with_copies = 0;
    o.on_token = [&](int64_t, int64_t) {
        ++tokens_seen;
        tokens_with_copies += std::all_of(layers.begin(), layers.end(), [](auto* q) { return q->holds_dequantized(); });
    };
    o.keep_dequantized = true;
    const auto kept = model::generate(*m, prompts, o);
    EXPECT_EQ(kept, every_step);
    EXPECT_GT(tokens_with_copies, tokens_seen / 2);  // all but the prompt step's tokens
    EXPECT_TRUE(std::none_of(layers.begin(), layers.end(), [](auto* q) { return q->holds_dequantized(); }));
    o.cuda_graph = false;
    EXPECT_EQ(model::generate(*m, prompts, o), every_step);
}
