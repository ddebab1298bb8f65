// Fused projections (model/fused_linear.h, Transformer::fuse_projections): the fused layer's weight
// is the parts' weights side by side (the dequantized matrix bit for bit, LoTA offsets and biases
// included, zeros where a part has none), its output the parts' outputs side by side, and a whole
// model gives the same logits and the same greedy decode fused and unfused. Layers that cannot be one
// product (LoRA, other bit widths or g_idx) are left alone.
#include <gtest/gtest.h>

#include <filesystem>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "model/fused_linear.h"
#include "adapter/lota_linear.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "quant/lota.h"
#include "quant/rtn.h"
#include "adapter/lora_linear.h"
#include "util/check.h"
#include "../test_dirs.h"
#include "tiny_model.h"

using namespace lota;
namespace fs = std::filesystem;

namespace {

quant::QuantizedWeight rtn_layer(int64_t N, int64_t K, int bits, int g) {
    quant::QuantOptions o;
    o.bits = bits;
    o.group_size = g;
    return quant::rtn_quantize(at::randn({N, K}), o);
}

}  // namespace

TEST(FusedLinear, QuantizedPartsSideBySide) {
    at::manual_seed(11);
    const int64_t K = 64;
    quant::QuantizedWeight a = rtn_layer(32, K, 4, 32), b = rtn_layer(16, K, 4, 32), c = rtn_layer(16, K, 4, 32);
    a.offset = at::randn({a.n_groups(), 32}) * 0.1;  // a merged LoTA layer; b and c have no offset
    c.bias = at::randn({16});                        // only c has a bias
    std::vector<model::LinearPtr> parts = {std::make_shared<model::QuantLinear>(a),
                                           std::make_shared<model::QuantLinear>(b),
                                           std::make_shared<model::QuantLinear>(c)};
    const model::LinearPtr fused = model::fuse_linears(parts);
    ASSERT_NE(fused, nullptr);
    EXPECT_EQ(fused->out_features(), 64);
    const auto& fq = dynamic_cast<const model::QuantLinear&>(*fused);
    std::vector<at::Tensor> w;
    for (const auto& p : parts) w.push_back(dynamic_cast<const model::QuantLinear&>(*p).dequantized(at::kFloat));
    EXPECT_TRUE(at::equal(fq.dequantized(at::kFloat), at::cat(w, 1))) << "weights side by side, bit for bit";
    EXPECT_TRUE(at::equal(fq.weight().bias, at::cat({at::zeros({48}), c.bias})));

    const torch::NoGradGuard no_grad;
    const at::Tensor x = at::randn({3, 5, K});
    std::vector<at::Tensor> y;
    for (const auto& p : parts) y.push_back(p->forward(x));
    EXPECT_TRUE(at::allclose(fused->forward(x), at::cat(y, -1), 1e-5, 1e-6));

    // Not one product: another bit width, another grouping, a LoRA part.
    const auto other_bits = std::make_shared<model::QuantLinear>(rtn_layer(16, K, 8, 32));
    EXPECT_EQ(model::fuse_linears({parts[0], other_bits}), nullptr);
    quant::QuantizedWeight act = b;
    act.g_idx = at::randperm(K, at::kInt).div(32, "floor").to(at::kInt);
    EXPECT_EQ(model::fuse_linears({parts[0], std::make_shared<model::QuantLinear>(act)}), nullptr);
    const auto lora = std::make_shared<adapter::LoraLinear>(parts[1], at::randn({4, K}), at::zeros({16, 4}), 2.0, 0.0);
    EXPECT_EQ(model::fuse_linears({parts[0], lora}), nullptr);
    EXPECT_EQ(model::fuse_linears({parts[0]}), nullptr);
}

TEST(FusedLinear, LotaPartsUseTheirMergedLayer) {
    at::manual_seed(12);
    const int64_t K = 64, r = 4;
    const quant::QuantizedWeight a = rtn_layer(32, K, 4, 32), b = rtn_layer(32, K, 4, 32);
    at::Tensor a_t = at::randint(-1, 2, {r, K}, at::kChar), b_t = at::randint(-1, 2, {32, r}, at::kChar);
    b_t.narrow(0, 0, 8).fill_(1);
    a_t.narrow(1, 0, 16).fill_(1);  // P = r > ω on some weights: markers fire
    auto lota = std::make_shared<adapter::LotaLinear>(a, a_t, b_t, 2.5);
    auto plain = std::make_shared<model::QuantLinear>(b);
    const model::LinearPtr fused = model::fuse_linears({lota, plain});
    ASSERT_NE(fused, nullptr);
    const auto& fq = dynamic_cast<const model::QuantLinear&>(*fused);
    EXPECT_TRUE(at::equal(fq.dequantized(at::kFloat), at::cat({lota->merged().dequantized(at::kFloat),
                                                               plain->dequantized(at::kFloat)}, 1)));
    ASSERT_TRUE(lota->merged().weight().offset.defined());
}

TEST(FusedLinear, ModelLogitsAndDecodeUnchanged) {
    const fs::path base = lota_test::fresh_dir("fused", "base"), q4 = lota_test::fresh_dir("fused", "q4");
    lota_test::make_tiny_model(base, q4, 7);
    const at::Tensor ids = at::randint(0, 256, {2, 7}, at::kLong);
    const torch::NoGradGuard no_grad;
    for (const fs::path& dir : {base, q4}) {
        auto plain = model::Transformer::load(dir.string(), {});
        auto fused = model::Transformer::load(dir.string(), {});
        const int64_t layers = fused->config().num_hidden_layers;
        EXPECT_EQ(fused->fuse_projections(), 2 * layers) << dir;
        EXPECT_TRUE(fused->fused());
        EXPECT_EQ(fused->blocks()[0].linear(model::Slot::Q), nullptr) << "the separate q layer is released";
        EXPECT_EQ(fused->fuse_projections(), 0) << "idempotent";
        EXPECT_TRUE(at::allclose(fused->forward(ids), plain->forward(ids), 1e-5, 1e-5)) << dir;
        // Greedy decode through the KV cache, token for token.
        model::KVCache c1 = plain->make_cache(2, 16), c2 = fused->make_cache(2, 16);
        at::Tensor t1 = plain->forward(ids, {}, &c1).select(1, -1).argmax(-1, true);
        at::Tensor t2 = fused->forward(ids, {}, &c2).select(1, -1).argmax(-1, true);
        for (int step = 0; step < 5; ++step) {
            ASSERT_TRUE(at::equal(t1, t2)) << dir << ", step " << step;
            t1 = plain->forward(t1, {}, &c1).select(1, -1).argmax(-1, true);
            t2 = fused->forward(t2, {}, &c2).select(1, -1).argmax(-1, true);
        }
    }
    lota::remove_tree(base.string());
    lota::remove_tree(q4.string());
}
