// Chunked LM-head loss (train/lm_loss.h) against the unchunked formula it replaces in the trainer:
// cross_entropy(linear(h, W).to(float32), targets, sum, ignore −100), and its gradient w.r.t. h by
// autograd, for chunk sizes that do and do not divide the rows, ignored rows included.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include "train/lm_loss.h"
#include "util/check.h"

namespace {

// float32 on the CPU: the chunked sums differ from the unchunked ones only by summation order.
constexpr double kLossRtol = 1e-6;
// ∂L/∂h: softmax as exp(x − lse) instead of exp(log_softmax(x)), one rounding apart per element.
constexpr double kGradAtol = 1e-7, kGradRtol = 1e-5;

struct Case {
    at::Tensor h, w, targets;
};

Case make_case(int64_t M, int64_t C, int64_t V, uint64_t seed) {
    at::manual_seed(seed);
    Case c;
    c.h = at::randn({M, C}) * 2;
    c.w = at::randn({V, C}) * 0.5;
    c.targets = at::randint(0, V, {M}, at::kLong);
    c.targets.index_put_({at::arange(0, M, 3)}, -100);  // every third row ignored
    return c;
}

std::pair<at::Tensor, at::Tensor> reference(const Case& c) {
    const at::Tensor h = c.h.clone().requires_grad_(true);
    const at::Tensor loss =
        at::cross_entropy_loss(at::linear(h, c.w).to(at::kFloat), c.targets, {}, at::Reduction::Sum, -100);
    loss.backward();
    return {loss.detach(), h.grad()};
}

void expect_grad_close(const at::Tensor& got, const at::Tensor& ref, const std::string& what) {
    const at::Tensor err = (got - ref).abs();
    const double tol_max = (kGradAtol + kGradRtol * ref.abs()).sub(err).min().item<double>();
    EXPECT_GE(tol_max, 0.0) << what << ": max abs err " << err.max().item<double>();
}

TEST(train_lm_loss, matches_unchunked_cross_entropy_and_gradient) {
    const Case c = make_case(37, 16, 50, 7);
    const auto [ref_loss, ref_grad] = reference(c);
    for (const int64_t chunk : {1, 5, 16, 37, 1000}) {
        const at::Tensor h = c.h.clone().requires_grad_(true);
        const at::Tensor loss = lota::train::lm_loss_sum(h, c.w, c.targets, chunk);
        ASSERT_EQ(loss.dim(), 0);
        EXPECT_EQ(loss.scalar_type(), at::kFloat);
        const double l = loss.item<double>(), r = ref_loss.item<double>();
        EXPECT_NEAR(l, r, kLossRtol * std::abs(r)) << "chunk " << chunk;
        (loss * 0.25).backward();  // a non-unit upstream gradient
        expect_grad_close(h.grad(), ref_grad * 0.25, "chunk " + std::to_string(chunk));
    }
}

TEST(train_lm_loss, ignored_rows_get_zero_gradient_and_no_loss) {
    Case c = make_case(6, 8, 11, 9);
    c.targets.fill_(-100);
    const at::Tensor h = c.h.clone().requires_grad_(true);
    const at::Tensor loss = lota::train::lm_loss_sum(h, c.w, c.targets, 4);
    EXPECT_EQ(loss.item<float>(), 0.0f);
    loss.backward();
    EXPECT_EQ(h.grad().abs().max().item<float>(), 0.0f);
}

TEST(train_lm_loss, bfloat16_is_close_to_float32) {
    const Case c = make_case(20, 32, 64, 11);
    const auto [ref_loss, ref_grad] = reference(c);
    const at::Tensor h = c.h.to(at::kBFloat16).requires_grad_(true);
    const at::Tensor loss = lota::train::lm_loss_sum(h, c.w.to(at::kBFloat16), c.targets, 8);
    EXPECT_EQ(loss.scalar_type(), at::kFloat);
    EXPECT_NEAR(loss.item<double>(), ref_loss.item<double>(), 0.02 * ref_loss.item<double>());
    loss.backward();
    EXPECT_EQ(h.grad().scalar_type(), at::kBFloat16);
    const double err = (h.grad().to(at::kFloat) - ref_grad).abs().max().item<double>();
    EXPECT_LT(err, 0.05 * ref_grad.abs().max().item<double>());
}

TEST(train_lm_loss, rejects_bad_inputs) {
    const Case c = make_case(4, 8, 10, 13);
    EXPECT_THROW(lota::train::lm_loss_sum(c.h, c.w.narrow(1, 0, 4), c.targets), lota::Error);
    EXPECT_THROW(lota::train::lm_loss_sum(c.h, c.w, c.targets.narrow(0, 0, 3)), lota::Error);
    EXPECT_THROW(lota::train::lm_loss_sum(c.h, c.w, c.targets, 0), lota::Error);
    EXPECT_THROW(lota::train::lm_loss_sum(c.h, c.w.clone().requires_grad_(true), c.targets), lota::Error);
}

}  // namespace
