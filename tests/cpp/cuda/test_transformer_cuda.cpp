// The transformer's inference loop on CUDA (Transformer::run_blocks): without autograd it fuses each
// residual add with the norm after it (kernels::add_rms_norm) and runs the MLP's silu·up as one kernel;
// its logits must equal the staged block_forward loop's bit for bit, for a prompt forward with padding
// and for decode steps. A quantized LM head (Transformer::quantize_head) decodes on CUDA, CUDA graph included,
// the tokens of the CPU model with the same quantized head.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../quant/tiny_model.h"
#include "../test_dirs.h"
#include "model/generate.h"
#include "model/quant_linear.h"
#include "model/transformer.h"

using namespace lota;

TEST(TransformerCuda, FusedResidualNormsGiveTheStagedLogits) {
    const auto base = lota_test::fresh_dir("tfcuda", "base"), q4 = lota_test::fresh_dir("tfcuda", "q4");
    lota_test::make_tiny_model(base, q4, 5);
    for (const char* dir : {base.c_str(), q4.c_str()}) {
        auto m = model::Transformer::load(dir, {"cuda", "bf16"});
        at::manual_seed(6);
        const int64_t B = 3, T = 9, V = m->config().vocab_size;
        const at::Tensor ids = at::randint(0, V, {B, T}, at::kLong);
        at::Tensor mask = at::ones({B, T}, at::kLong);
        mask[1].narrow(0, 0, 4).zero_();  // left padding
        const auto run = [&](bool staged) {
            // Grad mode on with nothing requiring a gradient: run_blocks takes the staged loop, whose
            // norms and silu·up are the same kernels called one by one.
            const at::AutoGradMode grad(staged);
            auto cache = m->make_cache(B, T + 4);
            std::vector<at::Tensor> logits{m->forward(ids, mask, &cache).cpu()};
            at::Tensor next = logits[0].select(1, T - 1).argmax(-1).view({B, 1});
            for (int s = 0; s < 3; ++s) {
                logits.push_back(m->forward(next, at::ones({B, 1}, at::kLong), &cache).cpu());
                next = logits.back().select(1, 0).argmax(-1).view({B, 1});
            }
            return logits;
        };
        const auto fused = run(false), staged = run(true);
        ASSERT_EQ(fused.size(), staged.size());
        for (size_t i = 0; i < fused.size(); ++i) {
            ASSERT_TRUE(fused[i].isfinite().all().item<bool>()) << dir << " forward " << i;
            EXPECT_TRUE(at::equal(fused[i], staged[i])) << dir << " forward " << i << ": max difference "
                                                        << (fused[i] - staged[i]).abs().max().item<float>();
        }
    }
}

TEST(TransformerCuda, QuantizedHeadDecodesTheCpuTokens) {
    const auto base = lota_test::fresh_dir("tfcuda", "qhead_base"), q4 = lota_test::fresh_dir("tfcuda", "qhead_q4");
    lota_test::make_tiny_model(base, q4, 9);
    auto gpu = model::Transformer::load(q4.string(), {"cuda", "f32"});
    auto cpu = model::Transformer::load(q4.string(), {"cpu", "f32"});
    for (model::Transformer* m : {gpu.get(), cpu.get()}) {
        m->fuse_projections();
        m->quantize_head(4, 32);
    }
    // RTN's min/max grid gives the same codes, scales and zeros on both devices: one quantized head.
    const quant::QuantizedWeight &qg = gpu->quantized_head()->weight(), &qc = cpu->quantized_head()->weight();
    ASSERT_TRUE(at::equal(qg.qweight.cpu(), qc.qweight) && at::equal(qg.scales.cpu(), qc.scales) &&
                at::equal(qg.zeros.cpu(), qc.zeros));
    const torch::NoGradGuard no_grad;
    at::manual_seed(10);
    const int64_t B = 3, T = 6, V = cpu->config().vocab_size;
    // One decode step (the packed-code product on B rows): float32 logits within GEMM-order differences.
    const at::Tensor ids = at::randint(0, V, {B, T}, at::kLong), next = at::randint(0, V, {B, 1}, at::kLong);
    auto cache_gpu = gpu->make_cache(B, T + 1), cache_cpu = cpu->make_cache(B, T + 1);
    gpu->forward(ids, {}, &cache_gpu);
    cpu->forward(ids, {}, &cache_cpu);
    const at::Tensor step_gpu = gpu->forward(next, {}, &cache_gpu).cpu(), step_cpu = cpu->forward(next, {}, &cache_cpu);
    EXPECT_TRUE(at::allclose(step_gpu, step_cpu, 1e-3, 1e-3)) << (step_gpu - step_cpu).abs().max().item<float>();
    // Greedy generation: decode steps replayed as a CUDA graph on the GPU.
    const auto prompts = lota_test::random_prompts(V, B);
    model::GenerateOptions o;
    o.max_new_tokens = 8;
    EXPECT_EQ(model::generate(*gpu, prompts, o), model::generate(*cpu, prompts, o));
    for (const auto& d : {base, q4}) lota::remove_tree(d.string());
}
