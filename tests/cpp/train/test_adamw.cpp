// AdamW (train/adamw.h) against LibTorch's torch::optim::AdamW on the same gradients, plus the
// learning-rate schedule at its edges.
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "train/adamw.h"

namespace {

TEST(train_adamw, matches_torch_adamw) {
    at::manual_seed(0);
    const at::Tensor init = at::randn({5, 7});
    at::Tensor ours = init.clone().set_requires_grad(true), ref = init.clone().set_requires_grad(true);
    lota::train::AdamWOptions o;
    o.lr = 1e-2;
    o.weight_decay = 0.1;
    o.max_grad_norm = 0;  // torch's optimizer does not clip
    torch::optim::AdamW torch_opt({ref}, torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    lota::train::AdamWState state;
    for (int step = 0; step < 5; ++step) {
        const at::Tensor g = at::randn({5, 7});
        ours.mutable_grad() = g.clone();
        ref.mutable_grad() = g.clone();
        lota::train::adamw_step({ours}, state, o, o.lr);
        torch_opt.step();
    }
    const double err = (ours - ref).abs().max().item<double>();
    // float32 arithmetic in a slightly different order: a few ulps of values of size ~1.
    EXPECT_LT(err, 1e-6) << "max abs error " << err;
}

TEST(train_adamw, clipping_and_schedule) {
    at::Tensor p = at::zeros({4}).set_requires_grad(true);
    p.mutable_grad() = at::full({4}, 1.0);
    lota::train::AdamWOptions o;
    lota::train::AdamWState s;
    EXPECT_DOUBLE_EQ(lota::train::adamw_step({p}, s, o, 0.0), 2.0);  // norm before clipping
    o.warmup_ratio = 0.1;
    EXPECT_DOUBLE_EQ(lota::train::adamw_lr(o, 5, 100), o.lr * 0.5);
    EXPECT_DOUBLE_EQ(lota::train::adamw_lr(o, 50, 100), o.lr);
    o.schedule = "cosine";
    EXPECT_NEAR(lota::train::adamw_lr(o, 100, 100), 0.0, 1e-15);
    EXPECT_NEAR(lota::train::adamw_lr(o, 55, 100), o.lr * 0.5, 1e-12);
}

}  // namespace
