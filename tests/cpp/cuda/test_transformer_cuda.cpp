// The transformer's inference loop on CUDA (Transformer::run_blocks): without autograd it fuses each
// residual add with the norm after it (kernels::add_rms_norm) and runs the MLP's silu·up as one kernel;
// its logits must equal the staged block_forward loop's bit for bit, for a prompt forward with padding
// and for decode steps.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../quant/tiny_model.h"
#include "../test_dirs.h"
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
