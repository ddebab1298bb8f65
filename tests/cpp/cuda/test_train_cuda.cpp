// Training pieces on CUDA against their CPU runs: t-SignSGD (sort-based quantiles, batched rows) bit
// for bit, also on its gradient moving average (--tsign-momentum), the chunked LM loss and its
// gradient, LoRA dropout masks that repeat with the state of a CUDA generator, and the training RMSNorm
// rotary embedding and silu·mul (model/lean_ops.h) in bf16 against float64 and ATen, and the input
// embedding and the checkpointed blocks' inputs kept on the host.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "../lota/lota_test_util.h"
#include "../test_dirs.h"
#include "adapter/lora_linear.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "model/init.h"
#include "model/lean_ops.h"
#include "model/rope.h"
#include "model/transformer.h"
#include "train/block_checkpoint.h"
#include "train/lm_loss.h"
#include "train/optimizer.h"
#include "train/tsignsgd.h"

using namespace lota_test;

TEST(TSignSgdCuda, MatchesCpuBitForBit) {
    at::Generator gen = make_gen(711);
    for (const int64_t t : {5, 95}) {  // phase 1; phase 2 with the guard on
        std::vector<lota::train::TSignSgdParam> cpu, cuda;
        for (int i = 0; i < 6; ++i) {
            const int64_t n = i < 4 ? 5000 : 777;
            const at::Tensor p = rand_ternary({n}, gen), g = at::randn({n}, gen) * 0.5;
            cpu.push_back({p.clone(), g});
            cuda.push_back({p.to(at::kCUDA), g.to(at::kCUDA)});
        }
        const lota::train::TSignSgdStats a = lota::train::tsignsgd_step(cpu, t, 100);
        const lota::train::TSignSgdStats b = lota::train::tsignsgd_step(cuda, t, 100);
        for (size_t i = 0; i < cpu.size(); ++i)
            expect_bitwise_equal(cuda[i].param.cpu(), cpu[i].param, "param " + std::to_string(i));
        EXPECT_EQ(a.n_selected, b.n_selected);
        EXPECT_EQ(a.n_changed, b.n_changed);
        EXPECT_EQ(a.n_guarded, b.n_guarded);
        EXPECT_EQ(a.guard_active, b.guard_active);
        EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-12 * a.grad_norm);
        EXPECT_GT(a.n_changed, 0) << "step " << t << ": the test needs entries that move";
    }
}

// The moving average m = β·m + (1 − β)·g is one multiply-add per entry on either device (at most a
// rounding apart); the ternary steps taken on it must be the CPU's, and the state saved on CUDA must
// resume a CPU run.
TEST(TSignSgdCuda, MomentumMatchesCpu) {
    at::Generator gen = make_gen(713);
    std::vector<lota::train::TSignSgdParam> cpu, cuda;
    std::vector<at::Tensor> means;
    for (int i = 0; i < 4; ++i) {
        const int64_t n = i < 3 ? 4000 : 999;
        const at::Tensor p = rand_ternary({n}, gen);
        cpu.push_back({p.clone(), at::zeros({n})});
        cuda.push_back({p.to(at::kCUDA), at::zeros({n}, at::TensorOptions().device(at::kCUDA))});
        means.push_back(at::randn({n}, gen) * 0.5);
    }
    lota::train::TSignSgdOptions o;
    o.momentum = 0.9;
    lota::train::TSignSgdOptimizer opt_cpu(cpu, o), opt_cuda(cuda, o);
    const int64_t T = 6;
    int64_t changed = 0;
    for (int64_t t = 1; t <= T; ++t) {
        for (size_t i = 0; i < cpu.size(); ++i) {
            const at::Tensor g = means[i] + at::randn(means[i].sizes(), gen);
            cpu[i].grad.copy_(g);
            cuda[i].grad.copy_(g);
        }
        const nlohmann::json a = opt_cpu.step(t, T).read(at::kCPU);
        const nlohmann::json b = opt_cuda.step(t, T).read(at::Device(at::kCUDA));
        opt_cpu.zero_grad();
        opt_cuda.zero_grad();
        for (size_t i = 0; i < cpu.size(); ++i) {
            expect_bitwise_equal(cuda[i].param.cpu(), cpu[i].param, "step " + std::to_string(t) + " param " +
                                                                      std::to_string(i));
            EXPECT_TRUE(at::allclose(opt_cuda.moments()[i].cpu(), opt_cpu.moments()[i], 1e-6, 1e-7));
        }
        EXPECT_EQ(a.at("n_changed"), b.at("n_changed"));
        EXPECT_EQ(a.at("guard_active"), b.at("guard_active"));
        changed += a.at("n_changed").get<int64_t>();
    }
    EXPECT_GT(changed, 0) << "the test needs entries that move";
    // The CUDA state (saved to the CPU) loads into a CPU optimizer.
    std::vector<lota::train::TSignSgdParam> resumed;
    for (const auto& p : cuda) resumed.push_back({p.param.cpu(), at::zeros(p.grad.sizes())});
    lota::train::TSignSgdOptimizer opt_resumed(resumed, o);
    opt_resumed.state_load(opt_cuda.state_save(), "cuda state");
    for (size_t i = 0; i < cpu.size(); ++i)
        expect_bitwise_equal(opt_resumed.moments()[i], opt_cuda.moments()[i].cpu(), "moment " + std::to_string(i));
}

TEST(LmLossCuda, ChunkedLossMatchesCpu) {
    at::Generator gen = make_gen(721);
    const at::Tensor h = at::randn({300, 64}, gen), w = at::randn({1000, 64}, gen) * 0.2;
    at::Tensor targets = at::randint(0, 1000, {300}, gen, at::TensorOptions().dtype(at::kLong));
    targets.narrow(0, 0, 40).fill_(-100);
    const at::Tensor hc = h.clone().requires_grad_(true), hg = h.to(at::kCUDA).requires_grad_(true);
    const at::Tensor lc = lota::train::lm_loss_sum(hc, w, targets, 128);
    const at::Tensor lg = lota::train::lm_loss_sum(hg, w.to(at::kCUDA), targets.to(at::kCUDA), 128);
    EXPECT_NEAR(lg.item<double>(), lc.item<double>(), 1e-5 * lc.item<double>());
    lc.backward();
    lg.backward();
    expect_close(hg.grad().cpu(), hc.grad(), 1e-6, 1e-4, "dL/dh CUDA vs CPU (TF32 may be on for the GEMMs)");
}

TEST(LoraLinearCuda, DropoutRepeatsWithTheGeneratorState) {
    const at::Device cuda(at::kCUDA);
    const double p = 0.3;
    // Base W = 0, A = B = I: y = α/r · dropout(x), so x = 1 shows the mask itself.
    const int64_t K = 256;
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
        auto base = std::make_shared<lota::model::DenseLinear>(at::zeros({K, K}));
        lota::adapter::LoraLinear l(base, at::eye(K), at::eye(K), 1.0, p);
        l.to(cuda, dtype);
        at::Generator gen = lota::adapter::lora_dropout_generator(cuda, 77);
        ASSERT_TRUE(gen.device().is_cuda());
        l.set_generator(gen);
        const at::Tensor x = at::ones({64, K}, at::TensorOptions().device(cuda).dtype(dtype));
        const at::Tensor state = gen.get_state();
        const at::Tensor y1 = l.forward(x);
        const at::Tensor y2 = l.forward(x);
        ASSERT_TRUE(y1.is_cuda());
        EXPECT_FALSE(at::equal(y1, y2)) << dtype;  // the generator advanced
        gen.set_state(state);
        EXPECT_TRUE(at::equal(l.forward(x), y1)) << dtype;
        // The same seed gives the same masks from a fresh generator.
        l.set_generator(lota::adapter::lora_dropout_generator(cuda, 77));
        EXPECT_TRUE(at::equal(l.forward(x), y1)) << dtype;
        // 16384 draws: the dropped fraction's standard deviation is ~0.0036.
        const double dropped = (y1 == 0).to(at::kDouble).mean().item<double>();
        EXPECT_NEAR(dropped, p, 0.02) << dtype;
        // Kept entries are scaled by 1/(1 − p) (rtol: bf16 rounding of the scale).
        const at::Tensor kept = y1.masked_select(y1 != 0).to(at::kFloat);
        EXPECT_TRUE(at::allclose(kept, at::full_like(kept, 1.0 / (1.0 - p)), 1e-2, 0)) << dtype;
    }
}

TEST(LeanOpsCuda, RmsNormAndSiluMulBf16) {
    at::manual_seed(12);
    const at::TensorOptions bf = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    const at::Tensor x0 = (at::randn({4, 33, 4096}) * 3).to(bf), w = (at::randn({4096}) * 0.5 + 1).to(bf);
    const at::Tensor g = at::randn({4, 33, 4096}).to(bf);
    const at::Tensor x = x0.clone().requires_grad_(true);
    const at::Tensor y = lota::model::rms_norm_lean(x, w, 1e-5);
    EXPECT_TRUE(at::equal(y.detach(), lota::kernels::rms_norm(x0, w, 1e-5)));  // the fused kernel's values
    const at::Tensor dx = torch::autograd::grad({y}, {x}, {g})[0].to(at::kDouble).cpu();
    // float64 reference: ∂x = r·(u − x·r²·mean(u·x)), u = g·w
    const at::Tensor xd = x0.to(at::kDouble).cpu(), ud = (g.to(at::kDouble) * w.to(at::kDouble)).cpu();
    const at::Tensor r = at::rsqrt(xd.pow(2).mean(-1, true) + 1e-5);
    const at::Tensor ref = r * (ud - xd * r * r * (ud * xd).mean(-1, true));
    EXPECT_LT((dx - ref).abs().max().item<double>(), 2e-2 * ref.abs().max().item<double>());

    const at::Tensor a0 = (at::randn({4, 33, 1024}) * 3).to(bf), b0 = at::randn({4, 33, 1024}).to(bf);
    const at::Tensor gm = at::randn({4, 33, 1024}).to(bf);
    const at::Tensor a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    const at::Tensor ar = a0.clone().requires_grad_(true), br = b0.clone().requires_grad_(true);
    const auto gl = torch::autograd::grad({lota::model::silu_mul(a, b)}, {a, b}, {gm});
    const auto gr = torch::autograd::grad({at::silu(ar) * br}, {ar, br}, {gm});
    EXPECT_TRUE(at::equal(gl[0], gr[0]) && at::equal(gl[1], gr[1]));

    // The rotary embedding: the fused kernel both ways; the gradient against the formula in float64.
    const int64_t B = 2, H = 32, T = 77, D = 128;
    const at::Tensor inv_freq = at::pow(500000.0, -at::arange(0, D, 2, at::kDouble) / D).to(at::kFloat);
    const at::Tensor positions = (at::arange(T, at::kLong).repeat({B, 1}) + at::tensor({0, 9}).view({B, 1})).cuda();
    const auto [cos, sin] = lota::model::rope_cos_sin(inv_freq.cuda(), positions, at::kBFloat16);
    const at::Tensor q0 = at::randn({B, T, H, D}).to(bf).transpose(1, 2), gq = at::randn({B, H, T, D}).to(bf);
    const at::Tensor q = q0.clone().requires_grad_(true);
    const at::Tensor yq = lota::model::rope_lean(q, cos, sin);
    EXPECT_TRUE(at::equal(yq.detach(), lota::kernels::rope_rotate(q0, cos, sin)));
    const at::Tensor dq = torch::autograd::grad({yq}, {q}, {gq})[0].to(at::kDouble).cpu();
    const at::Tensor gd = gq.to(at::kDouble).cpu(), cd = cos.to(at::kDouble).cpu().unsqueeze(1),
                     sd = sin.to(at::kDouble).cpu().unsqueeze(1);
    // ∂x = g·cos + rotate_halfᵀ(g·sin), rotate_halfᵀ(u) = cat(u₂, −u₁)
    const at::Tensor u = gd * sd;
    const at::Tensor dref = gd * cd + at::cat({u.narrow(-1, D / 2, D / 2), -u.narrow(-1, 0, D / 2)}, -1);
    EXPECT_LT((dq - dref).abs().max().item<double>(), 2e-2 * dref.abs().max().item<double>());
}

// Training keeps the input embedding table on the host (Transformer::embedding_to_host): the rows it
// gathers there and copies over must be the device table's, bit for bit, for host and device ids, and
// the forward on them the same; a tied table (it is the LM head) stays on the device.
TEST(EmbeddingOnHostCuda, SameHiddenStatesAsTheDeviceTable) {
    for (const bool tied : {false, true}) {
        const std::filesystem::path root = lota_test::fresh_dir("cuda", tied ? "embed_tied" : "embed");
        lota::model::InitOptions init;
        init.out = (root / "m").string();
        init.hidden = 64;
        init.intermediate = 96;
        init.tie_embeddings = tied;
        lota::model::model_init(init);
        auto m = lota::model::Transformer::load(init.out, {"cuda", "bf16"});
        at::manual_seed(13);
        const at::Tensor ids = at::randint(0, 256, {3, 9}, at::kLong);
        const at::Tensor mask = at::ones({3, 9}, at::kLong);
        mask[2].narrow(0, 6, 3).zero_();
        const at::Tensor e = m->embed(ids.cuda()), h = m->forward_hidden(ids, mask);
        ASSERT_EQ(m->embedding_to_host(), !tied);
        EXPECT_EQ(m->embed_weight().is_cpu(), !tied);
        for (const at::Tensor& i : {ids, ids.cuda()}) {
            const at::Tensor e2 = m->embed(i);
            ASSERT_TRUE(e2.is_cuda());
            expect_bitwise_equal(e2.cpu(), e.cpu(), "embedding rows");
        }
        expect_bitwise_equal(m->forward_hidden(ids, mask).cpu(), h.cpu(), "hidden states");
        lota::remove_tree(root.string());
    }
}

// --offload-checkpoints: a checkpointed block's input waits in pinned host memory and is copied back for
// the recomputation; the outputs and the gradient must be those of the input kept on the GPU, bit for bit.
TEST(OffloadCheckpointsCuda, SameOutputsAndGradients) {
    const std::filesystem::path root = lota_test::fresh_dir("cuda", "offload");
    lota::model::InitOptions init;
    init.out = (root / "m").string();
    init.hidden = 64;
    init.intermediate = 96;
    init.layers = 3;
    lota::model::model_init(init);
    auto m = lota::model::Transformer::load(init.out, {"cuda", "bf16"});
    at::manual_seed(17);
    const at::Tensor ids = at::randint(0, 256, {2, 11}, at::kLong);
    const at::Tensor r = at::randn({2, 11, 64}).to(at::kBFloat16).cuda();
    const auto ctx = std::make_shared<const lota::model::ForwardContext>(m->prepare(ids, {}, nullptr));
    std::vector<at::Tensor> outs, grads;
    for (const bool offload : {false, true}) {
        const at::Tensor e = m->embed(ids).detach().requires_grad_(true);
        at::Tensor h = e;
        for (int64_t l = 0; l < 3; ++l)
            h = lota::train::block_forward_checkpointed(*m, l, h, ctx, std::nullopt, offload);
        outs.push_back(h.detach().cpu());
        grads.push_back(torch::autograd::grad({(h * r).sum()}, {e})[0].cpu());
    }
    expect_bitwise_equal(outs[1], outs[0], "block outputs");
    expect_bitwise_equal(grads[1], grads[0], "gradient of the embeddings");
    EXPECT_GT(grads[0].abs().sum().item<double>(), 0);
    lota::remove_tree(root.string());
}
