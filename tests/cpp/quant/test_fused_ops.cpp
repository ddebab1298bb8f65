// The fused decode ops, RMSNorm (kernels/rms_norm.h) and the rotary embedding (kernels/rope.h): their CPU
// paths against the definitions in float64, and bad input. The CUDA kernels' suites are
// tests/cpp/kernels/test_rms_norm_cuda.cpp and test_rope_cuda.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include <ATen/ATen.h>

#include "../test_error.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "util/check.h"

namespace lota {
namespace {

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

}  // namespace
}  // namespace lota
