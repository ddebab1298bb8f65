// QuantLinear, the GPTQ linear loader and the model-level driver on a tiny random model:
// forward equals a dense layer with the dequantized weight; a quantized checkpoint's layers
// swapped into the model give the logits of the dequantized dense model; GPTQ beats RTN.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include "calibrate/gptq_driver.h"
#include "io/model_files.h"
#include "model/arch.h"
#include "model/init.h"
#include "io/gptq_checkpoint.h"
#include "model/generate.h"
#include "model/linear_loader.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "quant/rtn.h"
#include "util/check.h"
#include "../test_dirs.h"
#include "tiny_model.h"

using namespace lota;
namespace fs = std::filesystem;

namespace {

fs::path tmp_dir(const std::string& name) { return lota_test::fresh_dir("ql", name); }

// Swaps every projection of `m` for the one in GPTQ checkpoint `qdir` (dense: dequantized copy).
void load_linears(model::Transformer& m, const fs::path& qdir, bool dense) {
    const io::ModelFiles files(qdir.string());
    const std::optional<io::GptqConfig> gptq = io::gptq_config_read(qdir.string());
    ASSERT_TRUE(gptq.has_value());
    for (int64_t l = 0; l < m.config().num_hidden_layers; ++l)
        for (model::Slot s : model::PROJECTION_SLOTS) {
            auto& slot = m.blocks()[l].linear(s);
            const model::LinearSpec spec{model::name_linear(l, s), slot->in_features(), slot->out_features(), false,
                                         "config.json"};
            auto q = model::linear_load(files, gptq, spec, m.device(), at::kFloat);
            ASSERT_EQ(q->kind(), "gptq");
            if (dense)
                slot = std::make_shared<model::DenseLinear>(
                    dynamic_cast<model::QuantLinear&>(*q).dequantized(at::kFloat).t().contiguous());
            else
                slot = q;
        }
}

}  // namespace

TEST(QuantLinear, ForwardEqualsDenseOfDequantizedWeight) {
    at::manual_seed(0);
    quant::QuantOptions o;
    o.bits = 3;
    o.group_size = 32;
    quant::QuantizedWeight qw = quant::rtn_quantize(at::randn({96, 64}), o);
    qw.bias = at::randn({96});
    model::QuantLinear q(qw);
    const at::Tensor x = at::randn({2, 5, 64});
    const at::Tensor W = quant::dequantize(qw).t();
    // 10 rows take the packed-code product (kernels/quant_gemv.h), which sums in another order;
    // 40 rows dequantize and run at::linear, as this reference does.
    EXPECT_TRUE(at::allclose(q.forward(x), at::linear(x, W, qw.bias), 1e-5, 1e-5));
    const at::Tensor x40 = at::randn({8, 5, 64});
    EXPECT_TRUE(at::allclose(q.forward(x40), at::linear(x40, W, qw.bias), 1e-6, 1e-6));
    // A shared buffer gives the same result and is reused across layers.
    model::QuantLinear q2(qw, std::make_shared<model::DequantBuffer>());
    const torch::NoGradGuard no_grad;
    EXPECT_TRUE(at::equal(q2.forward(x), q.forward(x)));
    // bf16 compute.
    q.to(at::kCPU, at::kBFloat16);
    EXPECT_EQ(q.forward(x.to(at::kBFloat16)).scalar_type(), at::kBFloat16);
    EXPECT_THROW(q.forward(at::randn({2, 63})), Error);
}

TEST(QuantLinear, KeptDequantizedWeightGivesTheSameOutputs) {
    at::manual_seed(2);
    quant::QuantOptions o;
    o.bits = 4;
    o.group_size = 32;
    const quant::QuantizedWeight qw = quant::rtn_quantize(at::randn({80, 64}), o);
    model::QuantLinear ref(qw), kept(qw, std::make_shared<model::DequantBuffer>());
    kept.keep_dequantized(true);
    EXPECT_EQ(kept.dequantized_bytes(at::kBFloat16), 80 * 64 * 2);
    const torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) {  // made at the first call, reused after
        const at::Tensor x = at::randn({4, 9, 64});
        EXPECT_TRUE(at::equal(kept.forward(x), ref.forward(x))) << "call " << i;
        const at::Tensor x1 = at::randn({1, 3, 64});  // decode-sized: the packed-code product either way
        EXPECT_TRUE(at::equal(kept.forward(x1), ref.forward(x1))) << "call " << i;
    }
    // A new dtype makes a new copy; turning it off falls back to dequantizing every call.
    kept.to(at::kCPU, at::kBFloat16);
    ref.to(at::kCPU, at::kBFloat16);
    const at::Tensor xb = at::randn({4, 9, 64}).to(at::kBFloat16);
    EXPECT_TRUE(at::equal(kept.forward(xb), ref.forward(xb)));
    kept.keep_dequantized(false);
    EXPECT_TRUE(at::equal(kept.forward(xb), ref.forward(xb)));
}

// Generation on the CPU keeps the quantized weights dequantized while it runs (when host memory allows) once a
// step has more rows than the packed-code product takes, and frees them at the end: the same tokens as
// dequantizing every step.
TEST(QuantLinear, CpuGenerationKeepingWeightsDequantizedGivesTheSameTokens) {
    const fs::path base = tmp_dir("keep_base"), q4 = tmp_dir("keep_q4");
    lota_test::make_tiny_model(base, q4, 3);
    auto m = model::Transformer::load(q4.string(), {"cpu", "f32"});
    m->fuse_projections();
    at::manual_seed(4);
    // 20 rows a step: more than the packed-code product takes
    const auto prompts = lota_test::random_prompts(m->config().vocab_size, 20);
    const std::vector<model::QuantLinear*> layers = lota_test::quant_layers(*m);
    ASSERT_FALSE(layers.empty());
    model::GenerateOptions o;
    o.max_new_tokens = 12;
    int64_t tokens_seen = 0, tokens_with_copies = 0;
    o.on_token = [&](int64_t, int64_t) {
        ++tokens_seen;
        tokens_with_copies += std::all_of(layers.begin(), layers.end(), [](auto* q) { return q->holds_dequantized(); });
    };
    const torch::NoGradGuard no_grad;
    o.keep_dequantized = false;
    const auto every_step = model::generate(*m, prompts, o);
    EXPECT_EQ(tokens_with_copies, 0);
    tokens_seen = 0;
    o.keep_dequantized = true;
    const auto kept = model::generate(*m, prompts, o);
    EXPECT_EQ(kept, every_step);
    EXPECT_GT(tokens_with_copies, tokens_seen / 2);  // all but the prompt step's tokens
    EXPECT_TRUE(std::none_of(layers.begin(), layers.end(), [](auto* q) { return q->holds_dequantized(); }));
}

TEST(QuantLinear, QuantizedCheckpointLoadsAndMatchesDequantizedModel) {
    const fs::path base = tmp_dir("base"), q4 = tmp_dir("q4"), r4 = tmp_dir("r4");
    lota_test::make_tiny_model(base, r4, 5);
    calibrate::QuantizeModelOptions opts;
    opts.method = "rtn";
    opts.quant.group_size = 32;
    auto dense = model::Transformer::load(base.string(), {});
    auto deq = model::Transformer::load(base.string(), {});
    load_linears(*dense, r4, false);
    load_linears(*deq, r4, true);
    const at::Tensor ids = at::randint(0, 256, {2, 9}, at::kLong);
    const torch::NoGradGuard no_grad;
    EXPECT_TRUE(at::allclose(dense->forward(ids), deq->forward(ids), 1e-5, 1e-5));
    // Shape mismatch against the model's config is reported with the tensor name.
    const io::ModelFiles files(r4.string());
    try {
        model::linear_load(files, io::gptq_config_read(r4.string()), {"model.layers.0.mlp.up_proj", 64, 256, false,
                           "config.json"}, at::Device(at::kCPU), at::kFloat);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj.qweight' has shape [8, 128], expected [8, 256]"),
                  std::string::npos)
            << e.what();
    }
    // A GPTQ checkpoint is refused as quantize input; unknown method refused.
    EXPECT_THROW(calibrate::quantize_model(r4.string(), q4.string(), opts), Error);
    opts.method = "awq";
    EXPECT_THROW(calibrate::quantize_model(base.string(), q4.string(), opts), Error);
    opts.method = "gptq";  // no calibration text
    EXPECT_THROW(calibrate::quantize_model(base.string(), q4.string(), opts), Error);
    EXPECT_FALSE(fs::exists(q4));
    for (const auto& d : {base, r4}) lota::remove_tree(d.string());
}

// The CPU head of decode-sized inputs (Transformer::head) splits the vocabulary over the threads for one
// row and runs kernels/dense_gemv.h for 2–16; it must give the LM head's product at every row count.
TEST(TransformerHead, DecodeRowsOnThreadsEqualTheLinearHead) {
    const fs::path dir = tmp_dir("head");
    model::InitOptions io;
    io.out = dir.string();
    io.vocab = 5000;  // several chunks of the split, and a short last one
    model::model_init(io);
    auto m = model::Transformer::load(dir.string(), {});
    const torch::NoGradGuard no_grad;
    const int threads = at::get_num_threads();
    at::set_num_threads(2);
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{1, 1, 64}, {3, 2, 64}, {17, 1, 64}}) {
        const at::Tensor h = at::randn(shape, at::kFloat);
        const at::Tensor got = m->head(h);
        const at::Tensor want = at::linear(m->final_norm(h), m->lm_head_weight());
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max().item<float>();
    }
    at::set_num_threads(threads);
    lota::remove_tree(dir.string());
}
