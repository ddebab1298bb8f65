// GradReducer (train/grad_reduce.h) in one process: the float64 sums of the micro-batch gradients are
// rounded to float32 once (the exact sum, which a float32 running sum misses); buckets start their
// all-reduce during the backward of the last micro-batch, as soon as they and every bucket before
// them are complete, and never out of order; entries without a hook (LoRA's .grad) start at step_end.
// The all-reduce itself across ranks is tests/py/test_distributed.py's.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "dist/dist.h"
#include "train/grad_reduce.h"

namespace {

using lota::train::GradReducer;

// Four float32 buffers of 10 values; 160 bytes a bucket = two buffers' float64 sums.
struct FourBuffers {
    std::unique_ptr<lota::dist::Group> group = lota::dist::Group::single();
    std::vector<at::Tensor> bufs;
    std::unique_ptr<GradReducer> reducer;
    FourBuffers() {
        std::vector<GradReducer::Entry> entries;
        for (int i = 0; i < 4; ++i) {
            bufs.push_back(at::zeros({10}, at::kFloat));
            entries.push_back({bufs.back(), {}});
        }
        reducer = std::make_unique<GradReducer>(entries, *group, true, 160);
    }
};

TEST(train_grad_reduce, sums_are_exact_and_rounded_once) {
    FourBuffers s;
    ASSERT_EQ(s.reducer->n_buckets(), 2u);
    EXPECT_EQ(s.reducer->bucket_bytes_total(), 4 * 10 * 8);
    // Terms whose float32 running sum loses the small ones: 2^24, then 1, 1, 1 (float32: 2^24 + 1 == 2^24).
    const float terms[4] = {16777216.0f, 1.0f, 1.0f, 1.0f};
    s.reducer->step_begin(4);
    for (int m = 0; m < 4; ++m) {
        for (at::Tensor& b : s.bufs) b.add_(terms[m]);
        s.reducer->ready(0, 1);
        s.reducer->ready(2, 3);
        s.reducer->micro_batch_end();
    }
    s.reducer->step_end();
    float running = 0;
    for (float t : terms) running += t;
    const float exact = (float)(16777216.0 + 3.0);  // the exact sum, rounded once
    ASSERT_NE(running, exact) << "the terms do not tell a float32 running sum from the exact one";
    for (const at::Tensor& b : s.bufs) EXPECT_TRUE(at::equal(b, at::full({10}, exact, at::kFloat)));
    // The next step starts from zero sums.
    s.reducer->step_begin(1);
    for (at::Tensor& b : s.bufs) b.fill_(0.5f);
    s.reducer->micro_batch_end();
    s.reducer->step_end();
    for (const at::Tensor& b : s.bufs) EXPECT_TRUE(at::equal(b, at::full({10}, 0.5f, at::kFloat)));
}

TEST(train_grad_reduce, buckets_start_during_the_last_backward_in_order) {
    FourBuffers s;
    s.reducer->step_begin(2);
    s.reducer->ready(2, 3);  // first micro-batch: nothing may start, the sums are not complete
    s.reducer->ready(0, 1);
    s.reducer->micro_batch_end();
    EXPECT_EQ(s.reducer->n_launched(), 0u);
    s.reducer->ready(2, 3);  // last micro-batch: bucket 1 is complete, but bucket 0 goes first
    EXPECT_EQ(s.reducer->n_launched(), 0u);
    s.reducer->ready(0, 1);  // both complete: both start, still inside the backward
    EXPECT_EQ(s.reducer->n_launched(), 2u);
    s.reducer->micro_batch_end();
    s.reducer->step_end();
    EXPECT_EQ(s.reducer->n_launched_in_backward(), 2u);

    s.reducer->step_begin(1);  // a hook for bucket 0 only: bucket 1 is folded and started at the end
    s.reducer->ready(0, 1);
    EXPECT_EQ(s.reducer->n_launched(), 1u);
    s.reducer->micro_batch_end();
    s.reducer->step_end();
    EXPECT_EQ(s.reducer->n_launched_in_backward(), 1u);
    EXPECT_EQ(s.reducer->n_launched(), 2u);
}

TEST(train_grad_reduce, leaves_without_hooks_start_at_step_end) {
    const std::unique_ptr<lota::dist::Group> group = lota::dist::Group::single();
    at::Tensor a = at::zeros({3}, at::kFloat).set_requires_grad(true);
    at::Tensor b = at::zeros({2}, at::kFloat).set_requires_grad(true);
    GradReducer reducer({{{}, a}, {{}, b}}, *group, true, 8);  // one entry a bucket
    ASSERT_EQ(reducer.n_buckets(), 2u);
    reducer.step_begin(2);
    for (int m = 0; m < 2; ++m) {
        a.mutable_grad() = at::full({3}, 1.0f + (float)m);
        b.mutable_grad() = at::full({2}, 10.0f);
        reducer.micro_batch_end();
    }
    reducer.step_end();
    EXPECT_EQ(reducer.n_launched_in_backward(), 0u);
    EXPECT_TRUE(at::equal(a.grad(), at::full({3}, 3.0f)));
    EXPECT_TRUE(at::equal(b.grad(), at::full({2}, 20.0f)));
}

}  // namespace
