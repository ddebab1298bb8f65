// The fused decode ops, RMSNorm (kernels/rms_norm.h) and the rotary embedding (kernels/rope.h): their
// CPU paths against the definitions in float64, bad input, and the fused CUDA kernels against the
// ATen formulas on the GPU (skipped without CUDA).
#include <gtest/gtest.h>

#include <array>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
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
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat}) {
        int64_t elements = 0, differ = 0;
        for (int64_t H : {64, 128, 300, 4096, 5120})
            for (int64_t rows : {1, 7, 33}) {
                at::manual_seed(H + rows);
                const at::Tensor x = (at::randn({rows, H}) * 3).to(dtype).cuda();
                const at::Tensor w = (at::randn({H}) * 0.5 + 1).to(dtype).cuda();
                { at::Tensor poison = at::full({1 << 20}, NAN, x.options().dtype(at::kFloat)); }
                const at::Tensor y = kernels::rms_norm(x, w, 1e-6).cpu().to(at::kDouble);
                const at::Tensor ref = formula(x, w, 1e-6).cpu().to(at::kDouble);
                ASSERT_TRUE(y.isfinite().all().item<bool>());
                // Only float32 roundings inside the row's scale may differ (the order of the sum of
                // squares): a few float32 ulps before the output's rounding, at most one 16-bit step after.
                const double step = dtype == at::kBFloat16 ? 1.0 / 128 : dtype == at::kHalf ? 1.0 / 1024 : 1e-6;
                const at::Tensor err = (y - ref).abs();
                ASSERT_TRUE((err <= step * ref.abs() + 1e-30).all().item<bool>())
                    << "dtype " << dtype << " H " << H << " rows " << rows << " max err " << err.max().item<double>();
                elements += y.numel();
                differ += (err > 0).sum().item<int64_t>();
            }
        std::printf("rms_norm CUDA %s: %lld of %lld elements differ from the ATen formula\n", c10::toString(dtype),
                    (long long)differ, (long long)elements);
        if (dtype != at::kFloat) {
            EXPECT_LT(differ * 100, elements);  // the 16-bit rounding hides nearly all
        }
    }
}

TEST(RmsNormCuda, AutogradKeepsTheFormula) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const at::Tensor x = at::randn({2, 64}).cuda().requires_grad_(true), w = at::randn({64}).cuda();
    kernels::rms_norm(x, w, 1e-6).sum().backward();  // the fused kernel has no backward: the formula runs
    ASSERT_TRUE(x.grad().defined());
}

// HF's apply_rotary_pos_emb, op by op.
at::Tensor rope_formula(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t half = x.size(-1) / 2;
    const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

TEST(Rope, CpuMatchesFloat64Definition) {
    at::manual_seed(4);
    const int64_t B = 2, H = 3, T = 5, D = 8;
    const at::Tensor x = at::randn({B, T, H, D}).transpose(1, 2);  // the model's strided view
    const at::Tensor ang = at::randn({B, T, D / 2}).repeat({1, 1, 2});
    const at::Tensor y = kernels::rope_rotate(x, ang.cos(), ang.sin()).to(at::kDouble);
    const at::Tensor xd = x.to(at::kDouble), c = ang.cos().to(at::kDouble).unsqueeze(1), s = ang.sin().to(at::kDouble).unsqueeze(1);
    // Each (d, d + D/2) pair turned by its angle.
    const at::Tensor a = xd.narrow(-1, 0, D / 2), b = xd.narrow(-1, D / 2, D / 2);
    const at::Tensor ref = at::cat({a * c.narrow(-1, 0, D / 2) - b * s.narrow(-1, 0, D / 2),
                                    b * c.narrow(-1, D / 2, D / 2) + a * s.narrow(-1, D / 2, D / 2)}, -1);
    EXPECT_TRUE(at::allclose(y, ref, 1e-6, 1e-6));
    EXPECT_THROW(kernels::rope_rotate(x, ang.cos().narrow(1, 0, 4), ang.sin().narrow(1, 0, 4)), Error);
    EXPECT_THROW(kernels::rope_rotate(x.narrow(-1, 0, 7), ang.cos(), ang.sin()), Error);
}

TEST(RopeCuda, FusedKernelEqualsTheFormulaBitForBit) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (const auto& [B, H, T, D] : {std::array<int64_t, 4>{1, 32, 1, 128}, {3, 8, 17, 64}, {2, 5, 3, 6}}) {
            at::manual_seed(B * 100 + T);
            const at::Tensor x = (at::randn({B, T, H, D}) * 2).to(dtype).cuda().transpose(1, 2);
            const at::Tensor ang = at::rand({B, T, D / 2}).cuda() * 100;
            const at::Tensor cos = at::cat({ang, ang}, -1).cos().to(dtype), sin = at::cat({ang, ang}, -1).sin().to(dtype);
            { at::Tensor poison = at::full({1 << 20}, NAN, x.options().dtype(at::kFloat)); }
            const at::Tensor y = kernels::rope_rotate(x, cos, sin), ref = rope_formula(x, cos, sin);
            ASSERT_EQ(y.sizes(), ref.sizes());
            ASSERT_TRUE(at::equal(y, ref)) << "dtype " << dtype << " B " << B << " H " << H << " T " << T << " D " << D
                                           << " max diff " << (y.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
        }
}

}  // namespace
}  // namespace lota
