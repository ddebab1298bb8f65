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
#include "model/linear.h"

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

TEST(DenseGemvCpu, AppliesOnlyToDecodeSizedFloat32WithoutGradient) {
    const at::Tensor w = at::randn({8, 16});
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({1, 16}), w));   // one row: MKL's gemv
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({17, 16}), w));  // more than 16 rows: GEMM
    EXPECT_FALSE(dense_gemv_cpu_applies(at::randn({4, 16}, at::kDouble), w));
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
