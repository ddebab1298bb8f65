// QuantLinear, the GPTQ linear loader and the model-level driver on a tiny random model:
// forward equals a dense layer with the dequantized weight; a quantized checkpoint's layers
// swapped into the model give the logits of the dequantized dense model; GPTQ beats RTN; an RTN-quantized
// LM head (Transformer::quantize_head) gives the logits of its dequantized weight and leaves the embedding alone.
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
    const std::vector<model::QuantLinear*> layers = m->quant_linears();
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

// quantize_head: the logits are the final-norm hidden states times the RTN-dequantized head (a float64 product of
// rtn_quantize's weight), for a prompt (dequantize + GEMM) and a decode step (the packed-code product), and they
// differ from the stored head's; batched generation keeps the head dequantized with the other layers.
TEST(TransformerHead, QuantizedHeadGivesTheLogitsOfTheDequantizedHead) {
    const fs::path base = tmp_dir("qhead_base"), q4 = tmp_dir("qhead_q4");
    lota_test::make_tiny_model(base, q4, 7);
    auto m = model::Transformer::load(q4.string(), {"cpu", "f32"});
    m->fuse_projections();
    quant::QuantOptions o;
    o.bits = 4;
    o.group_size = 32;
    const at::Tensor head_kn = quant::dequantize(quant::rtn_quantize(m->lm_head_weight(), o)).to(at::kDouble);
    const torch::NoGradGuard no_grad;
    at::manual_seed(8);
    const int64_t B = 2, T = 12, V = m->config().vocab_size;
    const at::Tensor ids = at::randint(0, V, {B, T}, at::kLong);
    const at::Tensor stored = m->forward(ids);
    const model::Transformer::HeadQuantization sizes = m->quantize_head(4, 32);
    ASSERT_NE(m->quantized_head(), nullptr);
    EXPECT_EQ(sizes.bytes_before, V * 64 * 4);  // float32 [V, C]
    EXPECT_LT(sizes.bytes_after * 4, sizes.bytes_before);
    EXPECT_THROW(m->lm_head_weight(), Error);  // training's loss cannot silently use a missing head
    const auto reference = [&](const at::Tensor& seq) {  // [B, T', V] in float64
        return at::matmul(m->final_norm(m->forward_hidden(seq)).to(at::kDouble), head_kn);
    };
    const at::Tensor got = m->forward(ids);  // 24 rows: dequantize + GEMM
    const at::Tensor want = reference(ids);
    EXPECT_TRUE(at::allclose(got.to(at::kDouble), want, 1e-6, 1e-6))
        << (got.to(at::kDouble) - want).abs().max().item<double>();
    EXPECT_GT((got - stored).abs().max().item<float>(), 1e-3);  // the head did change
    // A decode step: B rows, the packed-code product (kernels::quant_gemv).
    auto cache = m->make_cache(B, T + 1);
    m->forward(ids, {}, &cache);
    const at::Tensor next = want.select(1, T - 1).argmax(-1).view({B, 1});
    const at::Tensor step = m->forward(next, {}, &cache);
    const at::Tensor step_want = reference(at::cat({ids, next}, 1)).narrow(1, T, 1);
    EXPECT_TRUE(at::allclose(step.to(at::kDouble), step_want, 1e-4, 1e-4))
        << (step.to(at::kDouble) - step_want).abs().max().item<double>();
    // 20 rows a step (more than the packed-code product takes): the head is kept dequantized like the blocks.
    const auto prompts = lota_test::random_prompts(V, 20);
    model::GenerateOptions g;
    g.max_new_tokens = 6;
    int64_t tokens_with_head_copy = 0;
    g.on_token = [&](int64_t, int64_t) { tokens_with_head_copy += m->quantized_head()->holds_dequantized(); };
    g.keep_dequantized = false;
    const auto every_step = model::generate(*m, prompts, g);
    EXPECT_EQ(tokens_with_head_copy, 0);
    g.keep_dequantized = true;
    EXPECT_EQ(model::generate(*m, prompts, g), every_step);
    EXPECT_GT(tokens_with_head_copy, 0);
    EXPECT_FALSE(m->quantized_head()->holds_dequantized());
    for (const auto& d : {base, q4}) lota::remove_tree(d.string());
}

// A tied model embeds with the original table after quantize_head: only the head reads the quantized copy.
TEST(TransformerHead, QuantizedTiedHeadLeavesTheEmbeddingAlone) {
    const fs::path dir = tmp_dir("qhead_tied");
    model::InitOptions io;
    io.out = dir.string();
    io.tie_embeddings = true;
    model::model_init(io);
    auto m = model::Transformer::load(dir.string(), {});
    ASSERT_TRUE(m->embed_weight().is_same(m->lm_head_weight()));
    const torch::NoGradGuard no_grad;
    const at::Tensor ids = at::randint(0, m->config().vocab_size, {2, 5}, at::kLong);
    const at::Tensor table = m->embed_weight().clone(), rows = m->embed(ids), logits = m->forward(ids);
    m->quantize_head(4, 64);
    EXPECT_TRUE(at::equal(m->embed_weight(), table));
    EXPECT_TRUE(at::equal(m->embed(ids), rows));
    EXPECT_FALSE(at::equal(m->forward(ids), logits));
    EXPECT_EQ(m->store_bf16_weights_if_exact(1), 0);  // float32 values; and no head tensor left to narrow
    EXPECT_TRUE(at::equal(m->embed(ids), rows));
    lota::remove_tree(dir.string());
}

TEST(TransformerHead, QuantizeHeadRejectsBadBitsAndGroupSizes) {
    const fs::path dir = tmp_dir("qhead_bad");
    model::InitOptions io;
    io.out = dir.string();
    model::model_init(io);
    auto m = model::Transformer::load(dir.string(), {});  // hidden 64
    const auto message = [&](int bits, int64_t group) {
        try {
            m->quantize_head(bits, group);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no throw");
    };
    EXPECT_NE(message(5, 32).find("bits = 5 is not supported"), std::string::npos) << message(5, 32);
    EXPECT_NE(message(0, 32).find("bits = 0 is not supported"), std::string::npos) << message(0, 32);
    for (const int64_t group : std::vector<int64_t>{48, -2, 128, int64_t(1) << 33})
        EXPECT_NE(message(4, group).find("does not divide hidden_size 64"), std::string::npos) << message(4, group);
    EXPECT_EQ(m->quantized_head(), nullptr);  // nothing changed
    EXPECT_NO_THROW(m->lm_head_weight());
    m->quantize_head(8, -1);  // one group per vocabulary row
    EXPECT_EQ(m->quantized_head()->weight().n_groups(), 1);
    EXPECT_NE(message(4, 32).find("already quantized"), std::string::npos) << message(4, 32);
    // 0: the first of 128, 64, 32 that divides hidden_size (64 here: 128 does not)
    auto auto_group = model::Transformer::load(dir.string(), {});
    EXPECT_EQ(auto_group->quantize_head(4, 0).group_size, 64);
    EXPECT_EQ(auto_group->quantized_head()->weight().n_groups(), 1);
    lota::remove_tree(dir.string());
}
