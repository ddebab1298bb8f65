// Nucleus (top-p) sampling of model::sample_next against the definition computed with a full sort of
// the vocabulary (in float32, as the sampler computes): every sampled token must be in the nucleus, every nucleus token must be reachable,
// and frequencies follow the nucleus probabilities. The nucleus sizes cover the first top-k (64 tokens)
// and both widenings (512 and 4096), so a sampler that sorted only a fixed top k would fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "model/generate.h"

namespace {

// The nucleus of each row by the definition: sort all tokens by probability, keep a token while the
// mass before it is below top_p. Returns a bool mask [rows, V].
at::Tensor nucleus_reference(const at::Tensor& logits, double temperature, double top_p) {
    const at::Tensor probs = at::softmax(logits / temperature, -1);
    auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
    const at::Tensor keep_sorted = (sorted.cumsum(-1) - sorted) < top_p;
    return at::zeros_like(keep_sorted).scatter_(-1, idx, keep_sorted);
}

struct Counts {
    at::Tensor hits;  // [rows, V] int64: how often each token was drawn
};

Counts draw(const at::Tensor& logits, double temperature, double top_p, int64_t n, uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor hits = at::zeros(logits.sizes(), at::kLong);
    for (int64_t i = 0; i < n; ++i) {
        const at::Tensor tok = lota::model::sample_next(logits, temperature, top_p, gen);  // [rows]
        EXPECT_EQ(tok.dim(), 1);
        hits.scatter_add_(1, tok.unsqueeze(1), at::ones({logits.size(0), 1}, at::kLong));
    }
    return {hits};
}

TEST(sampling, nucleus_equals_the_full_sort_definition) {
    const int64_t V = 6000;
    at::manual_seed(7);
    // Rows from peaked to nearly flat: nuclei of a few, a few hundred, thousands of tokens.
    const at::Tensor scale = at::tensor({8.0f, 2.1f, 0.6f, 0.05f}).unsqueeze(1);
    const at::Tensor logits = at::randn({4, V}) * scale;
    const double temperature = 0.7, top_p = 0.9;
    const at::Tensor keep = nucleus_reference(logits, temperature, top_p);
    const at::Tensor size = keep.sum(-1);
    EXPECT_LT(size[0].item<int64_t>(), 64);
    EXPECT_GT(size[1].item<int64_t>(), 64);
    EXPECT_LT(size[1].item<int64_t>(), 512);
    EXPECT_GT(size[2].item<int64_t>(), 512);
    EXPECT_GT(size[3].item<int64_t>(), 512 * 4);

    const Counts c = draw(logits, temperature, top_p, 1500, 1);
    EXPECT_EQ(c.hits.masked_select(keep.logical_not()).sum().item<int64_t>(), 0) << "a token outside the nucleus";
    // The most probable token past the first widening is drawn in the flat rows (it would never be with
    // only the top 64 or 512 sorted).
    const at::Tensor probs = at::softmax(logits.to(at::kDouble) / temperature, -1);
    const at::Tensor rank = probs.argsort(-1, /*descending=*/true);
    const at::Tensor drawn = c.hits.gather(1, rank);
    EXPECT_GT(drawn[3].slice(0, 512, V).sum().item<int64_t>(), 0);
    EXPECT_GT(drawn[2].slice(0, 512, V).sum().item<int64_t>(), 0);
    EXPECT_GT(drawn[1].slice(0, 64, V).sum().item<int64_t>(), 0);
}

TEST(sampling, frequencies_follow_the_nucleus_probabilities) {
    // 20 tokens with known probabilities; top_p 0.8 keeps the first few. The renormalised nucleus
    // probabilities must match the frequencies of 20000 draws within 5 standard errors.
    const at::Tensor probs = at::softmax(at::linspace(3.0, -3.0, 20, at::kDouble), -1);
    const at::Tensor logits = probs.log().to(at::kFloat).unsqueeze(0);
    const double top_p = 0.8;
    const at::Tensor keep = nucleus_reference(logits, 1.0, top_p)[0];
    const at::Tensor p = at::where(keep, probs, at::zeros_like(probs));
    const at::Tensor expect = p / p.sum();
    const int64_t n = 20000;
    const at::Tensor freq = draw(logits, 1.0, top_p, n, 3).hits[0].to(at::kDouble) / double(n);
    for (int64_t v = 0; v < 20; ++v) {
        const double e = expect[v].item<double>(), f = freq[v].item<double>();
        const double se = std::sqrt(std::max(e * (1 - e), 1e-12) / double(n));
        EXPECT_NEAR(f, e, 5 * se + 1e-12) << "token " << v;
    }
    EXPECT_GT(keep.sum().item<int64_t>(), 1);
}

TEST(sampling, greedy_and_full_distribution) {
    at::manual_seed(11);
    const at::Tensor logits = at::randn({3, 500});
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
    EXPECT_TRUE(lota::model::sample_next(logits, 0.0, 0.9, gen).equal(logits.argmax(-1)));
    // top_p = 1: any token may come; drawn tokens are valid ids.
    const at::Tensor t = lota::model::sample_next(logits, 1.0, 1.0, gen);
    EXPECT_EQ(t.size(0), 3);
    EXPECT_TRUE((t >= 0).all().item<bool>() && (t < 500).all().item<bool>());
}

}  // namespace
