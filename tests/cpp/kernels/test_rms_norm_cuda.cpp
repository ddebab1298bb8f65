// RMSNorm (kernels/rms_norm.h) on CUDA: the fused kernel against its CPU twin (HF's float32 formula)
// and the float64 definition, on fresh random rows of every float dtype, widths from 1 to 5120 (odd,
// not a multiple of the 256 threads, one- and multi-row batches), outputs poisoned first; with
// autograd on, the formula runs instead of the kernel and gradients arrive.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "kernels/rms_norm.h"
#include "util/check.h"

using lota_cuda_test::poison_device_cache;

TEST(RmsNormCuda, FusedKernelMatchesCpuTwinAndFloat64) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat}) {
        int64_t elements = 0, differ = 0;
        for (int64_t H : {1, 31, 64, 300, 4096, 5120})
            for (int64_t rows : {1, 7, 33}) {
                at::manual_seed(H * 100 + rows + static_cast<int>(dtype));
                const at::Tensor x = (at::randn({rows, H}) * 3).to(dtype);
                const at::Tensor w = (at::randn({H}) * 0.5 + 1).to(dtype);
                poison_device_cache(cuda);
                const at::Tensor y = lota::kernels::rms_norm(x.to(cuda), w.to(cuda), 1e-6).cpu();
                ASSERT_EQ(y.scalar_type(), dtype);
                const at::Tensor yd = y.to(at::kDouble);
                const at::Tensor twin = lota::kernels::rms_norm(x, w, 1e-6).to(at::kDouble);
                ASSERT_TRUE(yd.isfinite().all().item<bool>()) << "dtype " << dtype << " H " << H << " rows " << rows;
                // Only float32 roundings inside the row's scale may differ (the order of the sum of
                // squares). That can move the intermediate x·r by one 16-bit step, which w·y carries into
                // the output, and the output's own rounding adds one more: at most two steps.
                // Outputs in float16's subnormal range (below 2^-14) keep only an absolute step of 2^-24.
                const double step = dtype == at::kBFloat16 ? 1.0 / 128 : dtype == at::kHalf ? 1.0 / 1024 : 1e-6;
                const double tiny = dtype == at::kHalf ? std::ldexp(1.0, -24) : 1e-30;
                const at::Tensor err = (yd - twin).abs();
                ASSERT_TRUE((err <= 2 * step * twin.abs() + tiny).all().item<bool>())
                    << "vs CPU twin: dtype " << dtype << " H " << H << " rows " << rows << " max err "
                    << err.max().item<double>();
                // The definition in float64: the twin's own roundings (x·r and w·y to the dtype) on top.
                const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
                const at::Tensor exact = wd * xd / (xd.pow(2).mean(-1, true) + 1e-6).sqrt();
                const at::Tensor err64 = (yd - exact).abs();
                ASSERT_TRUE((err64 <= 3 * step * exact.abs() + tiny).all().item<bool>())
                    << "vs float64: dtype " << dtype << " H " << H << " rows " << rows << " max err "
                    << err64.max().item<double>();
                elements += y.numel();
                differ += (err > 0).sum().item<int64_t>();
            }
        std::printf("rms_norm CUDA %s: %lld of %lld elements differ from the CPU twin\n", c10::toString(dtype),
                    (long long)differ, (long long)elements);
        if (dtype != at::kFloat) {
            EXPECT_LT(differ * 100, elements);  // the 16-bit rounding hides nearly all
        }
    }
}

TEST(RmsNormCuda, AutogradRunsTheFormula) {
    // The fused kernel has no backward: with gradients required the formula runs, and its gradient
    // equals the CPU twin's.
    at::manual_seed(9);
    const at::Tensor x0 = at::randn({2, 64}), w = at::randn({64});
    const at::Tensor xc = x0.clone().requires_grad_(true), xg = x0.cuda().requires_grad_(true);
    lota::kernels::rms_norm(xc, w, 1e-6).square().sum().backward();
    lota::kernels::rms_norm(xg, w.cuda(), 1e-6).square().sum().backward();
    ASSERT_TRUE(xg.grad().defined());
    EXPECT_TRUE(at::allclose(xg.grad().cpu(), xc.grad(), 1e-4, 1e-5));
}

// The backward kernel (rms_norm_backward) against its CPU twin (the formula in ATen ops) and the float64
// gradient, outputs poisoned first. dx = r·u − x·r³·mean(u·x) subtracts two terms of similar size (for
// H = 1 they cancel: dx ≈ 0), so the error is bounded against the terms' size, not element by element.
TEST(RmsNormCuda, BackwardKernelMatchesCpuTwinAndFloat64) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat}) {
        const double step = dtype == at::kBFloat16 ? 1.0 / 128 : dtype == at::kHalf ? 1.0 / 1024 : 1e-6;
        for (int64_t H : {1, 31, 300, 4096, 5120})
            for (int64_t rows : {1, 7, 33}) {
                at::manual_seed(H * 7 + rows + static_cast<int>(dtype));
                const at::Tensor x = (at::randn({rows, H}) * 3).to(dtype);
                const at::Tensor w = (at::randn({H}) * 0.5 + 1).to(dtype);
                const at::Tensor g = at::randn({rows, H}).to(dtype);
                poison_device_cache(cuda);
                const at::Tensor dx = lota::kernels::rms_norm_backward(x.to(cuda), w.to(cuda), g.to(cuda), 1e-6).cpu();
                ASSERT_EQ(dx.scalar_type(), dtype);
                ASSERT_TRUE(dx.isfinite().all().item<bool>()) << "dtype " << dtype << " H " << H << " rows " << rows;
                const at::Tensor twin = lota::kernels::rms_norm_backward(x, w, g, 1e-6).to(at::kDouble);
                const at::Tensor xd = x.to(at::kDouble), ud = g.to(at::kDouble) * w.to(at::kDouble);
                const at::Tensor r = at::rsqrt(xd.pow(2).mean(-1, true) + 1e-6);
                const at::Tensor exact = r * (ud - xd * r * r * (ud * xd).mean(-1, true));
                const double scale = (r * ud).abs().max().item<double>() +
                                     (xd * r.pow(3) * (ud * xd).mean(-1, true)).abs().max().item<double>() + 1e-30;
                const double e_twin = (dx.to(at::kDouble) - twin).abs().max().item<double>();
                const double e_exact = (dx.to(at::kDouble) - exact).abs().max().item<double>();
                EXPECT_LE(e_twin, 2 * step * scale) << "vs CPU twin: dtype " << dtype << " H " << H << " rows " << rows;
                EXPECT_LE(e_exact, 4 * step * scale) << "vs float64: dtype " << dtype << " H " << H << " rows " << rows;
            }
    }
    EXPECT_THROW(lota::kernels::rms_norm_backward(at::randn({2, 8}, cuda), at::randn({8}, cuda), at::randn({2, 7}, cuda), 1e-6),
                 lota::Error);
}

// add_rms_norm: the sum equals ATen's add and the norm equals rms_norm of that sum, bit for bit (the
// same summation order whichever kernel runs: a misaligned copy of the row, which takes the element-wise
// kernel, gives the same bits as the register kernel); widths past the register kernel's 8192 included.
TEST(RmsNormCuda, AddRmsNormEqualsAddThenNormBitForBit) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (int64_t H : {1, 31, 64, 576, 4096, 8192, 8200})
            for (int64_t rows : {1, 5}) {
                at::manual_seed(H * 13 + rows + static_cast<int>(dtype));
                const at::Tensor x = (at::randn({rows, H}) * 3).to(dtype).to(cuda);
                const at::Tensor r = (at::randn({rows, H}) * 2).to(dtype).to(cuda);
                const at::Tensor w = (at::randn({H}) * 0.5 + 1).to(dtype).to(cuda);
                poison_device_cache(cuda);
                const auto [sum, y] = lota::kernels::add_rms_norm(x, r, w, 1e-5);
                const std::string where = std::string(c10::toString(dtype)) + " H " + std::to_string(H) +
                                          " rows " + std::to_string(rows);
                ASSERT_TRUE(at::equal(sum, x + r)) << where;
                const at::Tensor y_ref = lota::kernels::rms_norm(x + r, w, 1e-5);
                ASSERT_TRUE(at::equal(y, y_ref)) << where;
                // One element in: a misaligned row start, so the element-wise kernel runs.
                const at::Tensor shifted = at::empty({rows * H + 1}, x.options()).narrow(0, 1, rows * H).view({rows, H});
                shifted.copy_(x + r);
                EXPECT_TRUE(at::equal(lota::kernels::rms_norm(shifted, w, 1e-5), y_ref)) << where;
                // And the CPU path: the two calls.
                const auto [sum_cpu, y_cpu] = lota::kernels::add_rms_norm(x.cpu(), r.cpu(), w.cpu(), 1e-5);
                EXPECT_TRUE(at::equal(sum_cpu, sum.cpu())) << where;
                EXPECT_TRUE(at::equal(y_cpu, lota::kernels::rms_norm(sum_cpu, w.cpu(), 1e-5))) << where;
            }
    EXPECT_THROW(lota::kernels::add_rms_norm(at::randn({2, 8}, cuda), at::randn({2, 7}, cuda), at::randn({8}, cuda), 1e-6),
                 lota::Error);
}
