// The packed training body (Transformer::prepare_packed, train/block_checkpoint.h): on a right-padded
// batch the blocks run on the real tokens' rows only. Their hidden states and the gradient that reaches
// the embeddings equal the padded body's at every real token (padding rows are masked out of attention,
// so no real token depends on them), for a plain and a 4-bit model.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "../test_dirs.h"
#include "model/init.h"
#include "model/transformer.h"
#include "util/fs.h"

namespace {

using lota::model::ForwardContext;
using lota::model::Transformer;

struct Hidden {
    at::Tensor h, grad;  // real tokens' rows [N, C]; gradient of the embeddings [B, T, C]
};

// Every block on embeddings that require grad; loss = Σ over real rows of h·R.
Hidden run(Transformer& m, const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& r, bool packed) {
    const ForwardContext ctx = packed ? m.prepare_packed(ids, mask) : m.prepare(ids, mask, nullptr);
    EXPECT_EQ(ctx.rows.defined(), packed);
    const at::Tensor e = m.embed(ids).detach().requires_grad_(true);
    at::Tensor h = Transformer::pack(e, ctx);
    for (int64_t l = 0; l < (int64_t)m.blocks().size(); ++l) h = m.block_forward(l, h, ctx);
    const at::Tensor real = mask.reshape({-1}).to(at::kBool).nonzero().squeeze(1);
    const at::Tensor rows = Transformer::rows_at(h, mask, real);  // the trainer's way to the loss rows
    const at::Tensor grad = torch::autograd::grad({(rows * r).sum()}, {e})[0];
    return {rows.detach(), grad};
}

void check(int bits) {
    const std::filesystem::path root = lota_test::fresh_dir("train", "packed" + std::to_string(bits));
    lota::model::InitOptions init;
    init.out = (root / "m").string();
    init.hidden = 64;
    init.intermediate = 96;
    init.bits = bits;
    init.group_size = 32;
    lota::model::model_init(init);
    auto m = Transformer::load(init.out, {"cpu", "f32"});
    at::manual_seed(11);
    const at::Tensor ids = at::randint(0, 256, {3, 7}, at::kLong);
    const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, at::kLong).view({3, 7});
    const at::Tensor r = at::randn({12, 64});
    const Hidden padded = run(*m, ids, mask, r, false), packed = run(*m, ids, mask, r, true);
    ASSERT_EQ(packed.h.sizes(), padded.h.sizes());
    EXPECT_TRUE(at::allclose(packed.h, padded.h, 1e-5, 1e-5)) << (packed.h - padded.h).abs().max().item<double>();
    EXPECT_TRUE(at::allclose(packed.grad, padded.grad, 1e-5, 1e-5))
        << (packed.grad - padded.grad).abs().max().item<double>();
    EXPECT_GT(packed.grad.abs().sum().item<double>(), 0);
    // A batch without padding runs unpacked.
    EXPECT_FALSE(m->prepare_packed(ids, at::ones_like(mask)).rows.defined());
    lota::remove_tree(root);
}

TEST(PackedBody, EqualsPaddedBodyOnRealTokens) { check(0); }

TEST(PackedBody, EqualsPaddedBodyOnRealTokensQuantized) { check(4); }

}  // namespace
