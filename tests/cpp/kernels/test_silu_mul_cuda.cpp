// SwiGLU (kernels/silu_mul.h) on CUDA: the fused kernel against ATen's two CUDA ops, silu(gate)·up, and
// the float64 definition, on fresh random inputs of every float dtype: gate and up as the two halves of
// one [rows, 2n] tensor (as the fused gate/up product makes them) and as separate tensors, widths that
// are and are not a multiple of the 16-byte run, a misaligned start, outputs poisoned first.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "kernels/silu_mul.h"
#include "util/check.h"

using lota_cuda_test::poison_device_cache;

TEST(SiluMulCuda, MatchesAtenOpsAndFloat64) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat}) {
        int64_t elements = 0, differ = 0;
        const double step = dtype == at::kBFloat16 ? 1.0 / 128 : dtype == at::kHalf ? 1.0 / 1024 : 1e-6;
        for (int64_t n : {1, 7, 64, 1000, 14336})
            for (int64_t rows : {1, 3, 17})
                for (int layout = 0; layout < 3; ++layout) {
                    at::manual_seed(n * 31 + rows * 3 + layout + static_cast<int>(dtype));
                    at::Tensor gate, up;
                    if (layout == 0) {  // halves of one tensor
                        const at::Tensor y = (at::randn({rows, 2 * n}) * 4).to(dtype).to(cuda);
                        gate = y.narrow(1, 0, n);
                        up = y.narrow(1, n, n);
                    } else if (layout == 1) {  // separate, contiguous
                        gate = (at::randn({rows, n}) * 4).to(dtype).to(cuda);
                        up = (at::randn({rows, n}) * 4).to(dtype).to(cuda);
                    } else {  // separate, starting one element into their storage
                        gate = at::empty({rows * n + 1}, at::TensorOptions().dtype(dtype).device(cuda)).narrow(0, 1, rows * n).view({rows, n});
                        up = at::empty({rows * n + 1}, gate.options()).narrow(0, 1, rows * n).view({rows, n});
                        gate.copy_(at::randn({rows, n}) * 4);
                        up.copy_(at::randn({rows, n}) * 4);
                    }
                    poison_device_cache(cuda);
                    const at::Tensor out = lota::kernels::silu_mul(gate, up);
                    const std::string where = std::string(c10::toString(dtype)) + " n " + std::to_string(n) +
                                              " rows " + std::to_string(rows) + " layout " + std::to_string(layout);
                    ASSERT_EQ(out.sizes(), gate.sizes()) << where;
                    ASSERT_TRUE(out.is_contiguous()) << where;
                    const at::Tensor aten = (at::silu(gate) * up).to(at::kDouble).cpu();
                    const at::Tensor o = out.to(at::kDouble).cpu();
                    ASSERT_TRUE(o.isfinite().all().item<bool>()) << where;
                    // ATen's formula and roundings: expf may differ by an ulp between CUDA's math library
                    // builds, which the 16-bit rounding of silu almost always hides; at most one step of
                    // silu carried into the product, and the product's own rounding.
                    const at::Tensor err = (o - aten).abs();
                    ASSERT_TRUE((err <= 2 * step * aten.abs() + 1e-30).all().item<bool>())
                        << where << ": max error " << err.max().item<double>();
                    const at::Tensor g = gate.to(at::kDouble).cpu(), u = up.to(at::kDouble).cpu();
                    const at::Tensor exact = g / (1 + (-g).exp()) * u;
                    ASSERT_TRUE(((o - exact).abs() <= 3 * step * exact.abs() + 1e-6).all().item<bool>()) << where;
                    elements += out.numel();
                    differ += (err > 0).sum().item<int64_t>();
                }
        std::printf("silu_mul CUDA %s: %lld of %lld elements differ from ATen's two ops\n", c10::toString(dtype),
                    (long long)differ, (long long)elements);
        EXPECT_LT(differ * 1000, elements);
    }
    EXPECT_THROW(lota::kernels::silu_mul(at::randn({2, 8}, cuda), at::randn({2, 7}, cuda)), lota::Error);
    EXPECT_THROW(lota::kernels::silu_mul(at::randn({2, 8}, cuda), at::randn({2, 8}, cuda).to(at::kHalf)), lota::Error);
}
