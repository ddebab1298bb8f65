// RMSNorm (kernels/rms_norm.h): the CPU path against HF's formula written out in float64, bad
// input, and the fused CUDA kernel against the ATen formula on the GPU (skipped without CUDA).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "kernels/rms_norm.h"
#include "util/check.h"

namespace lota {
namespace {

using lota_cuda_test::have_cuda;

// The formula with every op spelled out (float32 as HF computes it).
at::Tensor formula(const at::Tensor& x, const at::Tensor& w, double eps) {
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor y = (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
    return w * y;
}

TEST(RmsNorm, CpuMatchesFloat64Definition) {
    at::manual_seed(3);
    const at::Tensor x = at::randn({3, 5, 96}) * 4, w = at::randn({96});
    const at::Tensor y = kernels::rms_norm(x, w, 1e-5);
    const at::Tensor xd = x.to(at::kDouble);
    const at::Tensor ref = w.to(at::kDouble) * xd / (xd.pow(2).mean(-1, true) + 1e-5).sqrt();
    EXPECT_EQ(y.sizes(), x.sizes());
    EXPECT_TRUE(at::allclose(y.to(at::kDouble), ref, 1e-5, 1e-6));
}

TEST(RmsNorm, BadInputIsRefused) {
    EXPECT_THROW(kernels::rms_norm(at::randn({2, 8}), at::randn({7}), 1e-6), Error);
    EXPECT_THROW(kernels::rms_norm(at::randn({2, 8}), at::randn({2, 8}), 1e-6), Error);
}

TEST(RmsNormCuda, FusedKernelMatchesTheFormula) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const torch::NoGradGuard no_grad;
    int64_t elements = 0, differ = 0;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (int64_t H : {64, 128, 300, 4096, 5120})
            for (int64_t rows : {1, 7, 33}) {
                at::manual_seed(H + rows);
                const at::Tensor x = (at::randn({rows, H}) * 3).to(dtype).cuda();
                const at::Tensor w = (at::randn({H}) * 0.5 + 1).to(dtype).cuda();
                { at::Tensor poison = at::full({1 << 20}, NAN, x.options().dtype(at::kFloat)); }
                const at::Tensor y = kernels::rms_norm(x, w, 1e-6).cpu().to(at::kDouble);
                const at::Tensor ref = formula(x, w, 1e-6).cpu().to(at::kDouble);
                ASSERT_TRUE(y.isfinite().all().item<bool>());
                // Only the float32 sum of squares may differ (its order): at most one rounding step of
                // the output type, and rarely.
                const double step = dtype == at::kBFloat16 ? 1.0 / 128 : dtype == at::kHalf ? 1.0 / 1024 : 1e-6;
                const at::Tensor err = (y - ref).abs();
                ASSERT_TRUE((err <= step * ref.abs() * 2 + 1e-30).all().item<bool>())
                    << "dtype " << dtype << " H " << H << " rows " << rows << " max err " << err.max().item<double>();
                elements += y.numel();
                differ += (err > 0).sum().item<int64_t>();
            }
    std::printf("rms_norm CUDA: %lld of %lld elements differ from the ATen formula\n", (long long)differ,
                (long long)elements);
    EXPECT_LT(differ * 100, elements);  // fewer than 1 %
}

TEST(RmsNormCuda, AutogradKeepsTheFormula) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const at::Tensor x = at::randn({2, 64}).cuda().requires_grad_(true), w = at::randn({64}).cuda();
    kernels::rms_norm(x, w, 1e-6).sum().backward();  // the fused kernel has no backward: the formula runs
    ASSERT_TRUE(x.grad().defined());
}

}  // namespace
}  // namespace lota
