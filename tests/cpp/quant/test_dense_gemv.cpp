// kernels::dense_gemv_cpu (the decode-sized float32 product) against a float64 product of the same
// inputs: every row count it takes, weight counts that leave 1–3 rows past the 4-row tiles, lengths
// with and without a tail past the 8-float vectors. The output comes from at::empty, so an element
// the kernel misses shows up as a mismatch.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include "kernels/dense_gemv.h"
#include "model/init.h"
#include "model/linear.h"
#include "model/transformer.h"
#include "util/fs.h"
#include "../test_dirs.h"

namespace {

using lota::kernels::dense_gemv_cpu;
using lota::kernels::dense_gemv_cpu_applies;

TEST(DenseGemvCpu, MatchesFloat64Product) {
    at::manual_seed(3);
    const torch::NoGradGuard no_grad;
    // Widths that fill and do not fill the 8- and 16-float vectors, and counts of weight and input rows
    // around both builds' tiles (4 × 3 with AVX2, 6 × 4 with AVX-512).
    for (int64_t K : {8, 13, 40, 64, 576}) {
        for (int64_t N : {1, 3, 4, 6, 7, 13, 64, 130}) {
            for (int64_t M : {2, 3, 4, 5, 9, 16}) {
                const at::Tensor x = at::randn({M, K}), w = at::randn({N, K});
                ASSERT_TRUE(dense_gemv_cpu_applies(x, w));
                const at::Tensor got = dense_gemv_cpu(x, w);
                const at::Tensor want = at::mm(x.to(at::kDouble), w.to(at::kDouble).t());
                // float32 sums of K products of unit normals: error well below 1e-5·sqrt(K)·|terms|
                const double tol = 1e-5 * std::sqrt(double(K)) * 4;
                EXPECT_TRUE(at::allclose(got.to(at::kDouble), want, 0, tol))
                    << "M " << M << " N " << N << " K " << K << ": max err "
                    << (got.to(at::kDouble) - want).abs().max().item<double>();
            }
        }
    }
}

TEST(DenseGemvCpu, Bfloat16WeightGivesTheFloat32ProductOfItsValues) {
    at::manual_seed(5);
    const torch::NoGradGuard no_grad;
    // A bfloat16 weight is widened in registers: the result must be the float32 kernel's on the same
    // values (the same sums in the same order), bit for bit; one row and more than 16 rows, which the float32
    // kernel leaves to MKL, against float64.
    for (int64_t K : {8, 13, 40, 64, 576}) {
        for (int64_t N : {1, 3, 7, 13, 64, 130}) {
            for (int64_t M : {int64_t(1), int64_t(2), int64_t(5), int64_t(16), lota::kernels::kDenseGemvMaxRowsBf16}) {
                const at::Tensor x = at::randn({M, K}), w16 = at::randn({N, K}).to(at::kBFloat16);
                const at::Tensor w32 = w16.to(at::kFloat);
                ASSERT_TRUE(dense_gemv_cpu_applies(x, w16));
                const at::Tensor got = dense_gemv_cpu(x, w16);
                ASSERT_EQ(got.scalar_type(), at::kFloat);
                if (M >= 2 && M <= lota::kernels::kDenseGemvMaxRows) {
                    EXPECT_TRUE(at::equal(got, dense_gemv_cpu(x, w32))) << "M " << M << " N " << N << " K " << K;
                } else {
                    const at::Tensor want = at::mm(x.to(at::kDouble), w32.to(at::kDouble).t());
                    EXPECT_TRUE(at::allclose(got.to(at::kDouble), want, 0, 1e-5 * std::sqrt(double(K)) * 4))
                        << "N " << N << " K " << K;
                }
            }
        }
    }
}

TEST(DenseGemvCpu, DenseLinearStoresBfloat16OnlyWhenExact) {
    at::manual_seed(6);
    const torch::NoGradGuard no_grad;
    const at::Tensor w = at::randn({40, 24}).to(at::kBFloat16).to(at::kFloat), b = at::randn({40});
    lota::model::DenseLinear lin(w, b);
    ASSERT_TRUE(lin.store_bf16_if_exact());
    EXPECT_EQ(lin.weight().scalar_type(), at::kBFloat16);
    // Decode-sized (the kernel) and prefill-sized (widened for MKL's GEMM) inputs: float32 out, the values
    // of the float32 layer.
    for (int64_t rows : {1, 6, 40}) {
        const at::Tensor x = at::randn({rows, 24});
        const at::Tensor got = lin.forward(x);
        EXPECT_EQ(got.scalar_type(), at::kFloat);
        EXPECT_TRUE(at::allclose(got, at::linear(x, w, b), 1e-5, 1e-5)) << rows << " rows";
    }
    // A weight with a value bfloat16 cannot hold stays float32.
    at::Tensor w2 = w.clone();
    w2[3][5] = 1.0f + 1.0f / 1024;
    lota::model::DenseLinear lin2(w2);
    EXPECT_FALSE(lin2.store_bf16_if_exact());
    EXPECT_EQ(lin2.weight().scalar_type(), at::kFloat);
}

TEST(DenseGemvCpu, ModelWithBfloat16StoredWeightsDecodesTheSame) {
    // A bf16 checkpoint computed in float32, with its weights kept in bfloat16 (tied and untied LM head):
    // the same logits (the products differ from MKL's only in summation order) and the same greedy tokens
    // through the KV cache; a float32 checkpoint with values bfloat16 cannot hold stays float32.
    const torch::NoGradGuard no_grad;
    for (const bool tied : {false, true}) {
        const std::filesystem::path dir = lota_test::fresh_dir("bf16_store", tied ? "tied" : "untied");
        lota::model::InitOptions io;
        io.out = dir.string();
        io.seed = 11;
        io.tie_embeddings = tied;
        io.dtype = "bf16";
        lota::model::model_init(io);
        auto plain = lota::model::Transformer::load(dir.string(), {});
        auto narrow = lota::model::Transformer::load(dir.string(), {});
        ASSERT_EQ(plain->dtype(), at::kFloat);
        const int64_t layers = narrow->config().num_hidden_layers;
        EXPECT_EQ(narrow->store_bf16_weights_if_exact(lota::kernels::kDenseGemvMaxRowsBf16 + 1), 0)
            << "batches past the kernel's rows keep float32 weights for MKL";
        EXPECT_EQ(narrow->store_bf16_weights_if_exact(2), 7 * layers + 1) << "every projection and the head";
        EXPECT_EQ(narrow->lm_head_weight().scalar_type(), at::kBFloat16);
        EXPECT_EQ(narrow->embed_weight().scalar_type(), tied ? at::kBFloat16 : at::kFloat);
        at::manual_seed(12);
        const at::Tensor ids = at::randint(0, 256, {2, 7}, at::kLong);
        const at::Tensor want = plain->forward(ids), got = narrow->forward(ids);
        EXPECT_EQ(got.scalar_type(), at::kFloat);
        EXPECT_TRUE(at::allclose(got, want, 1e-4, 1e-5)) << "max diff " << (got - want).abs().max().item<double>();
        for (const int64_t batch : {int64_t(1), int64_t(2)}) {
            const at::Tensor prompt = ids.narrow(0, 0, batch);
            lota::model::KVCache c1 = plain->make_cache(batch, 16), c2 = narrow->make_cache(batch, 16);
            at::Tensor t1 = plain->forward(prompt, {}, &c1).select(1, -1).argmax(-1, true);
            at::Tensor t2 = narrow->forward(prompt, {}, &c2).select(1, -1).argmax(-1, true);
            for (int step = 0; step < 5; ++step) {
                ASSERT_TRUE(at::equal(t1, t2)) << "batch " << batch << ", step " << step;
                const at::Tensor l1 = plain->forward(t1, {}, &c1), l2 = narrow->forward(t2, {}, &c2);
                EXPECT_TRUE(at::allclose(l2, l1, 1e-4, 1e-5)) << "batch " << batch << ", step " << step;
                t1 = l1.select(1, -1).argmax(-1, true);
                t2 = l2.select(1, -1).argmax(-1, true);
            }
        }
        lota::remove_tree(dir.string());
    }
    const std::filesystem::path f32 = lota_test::fresh_dir("bf16_store", "f32");
    lota::model::InitOptions io;
    io.out = f32.string();
    lota::model::model_init(io);
    EXPECT_EQ(lota::model::Transformer::load(f32.string(), {})->store_bf16_weights_if_exact(1), 0);
    lota::remove_tree(f32.string());
}

TEST(DenseGemvCpu, AppliesOnlyToDecodeSizedFloat32WithoutGradient) {
    const at::Tensor w = at::randn({8, 16});
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({1, 16}), w));   // one row: MKL's gemv
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({17, 16}), w));  // more than 16 rows: GEMM
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({4, 16}, at::kDouble), w));
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({4, 16}), w.to(at::kHalf)));
    EXPECT_TRUE(dense_gemv_cpu_applies(at::randn({1, 16}), w.to(at::kBFloat16)));  // no MKL gemv for it
    EXPECT_TRUE(dense_gemv_cpu_applies(at::randn({32, 16}), w.to(at::kBFloat16)));
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({33, 16}), w.to(at::kBFloat16)));
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({4, 32}).slice(1, 0, 16), w));  // not contiguous
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({4, 16}).requires_grad_(), w));
    EXPECT_THROW(dense_gemv_cpu(at::randn({4, 15}), w), std::exception);
}

TEST(DenseGemvCpu, DenseLinearTakesItForDecodeStepsWithBias) {
    at::manual_seed(4);
    const torch::NoGradGuard no_grad;
    const at::Tensor w = at::randn({40, 24}), b = at::randn({40});
    lota::model::DenseLinear lin(w, b);
    const at::Tensor x = at::randn({3, 2, 24});  // 6 rows
    const at::Tensor got = lin.forward(x);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{3, 2, 40}));
    EXPECT_TRUE(at::allclose(got, at::linear(x, w, b), 1e-5, 1e-5));
}

}  // namespace
