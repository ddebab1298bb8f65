// The fused decode ops, RMSNorm and the residual add before it (kernels/rms_norm.h), the rotary embedding
// (kernels/rope.h), SwiGLU (kernels/silu_mul.h) and the KV-cache write (kernels/kv_cache_write.h): their
// CPU paths against the definitions, and bad input. The CUDA kernels' suites are
// tests/cpp/kernels/test_rms_norm_cuda.cpp, test_rope_cuda.cpp, test_silu_mul_cuda.cpp and
// test_kv_cache_write_cuda.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include <ATen/ATen.h>

#include "../test_error.h"
#include "kernels/kv_cache_write.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/silu_mul.h"
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

TEST(RmsNorm, AddRmsNormCpuMatchesFloat64Definition) {
    at::manual_seed(5);
    const at::Tensor x = at::randn({4, 2, 96}) * 3, r = at::randn({4, 2, 96}), w = at::randn({96});
    const auto [sum, y] = kernels::add_rms_norm(x, r, w, 1e-5);
    const at::Tensor sd = x.to(at::kDouble) + r.to(at::kDouble);
    EXPECT_TRUE(at::allclose(sum.to(at::kDouble), sd, 1e-6, 1e-6));
    const at::Tensor ref = w.to(at::kDouble) * sd / (sd.pow(2).mean(-1, true) + 1e-5).sqrt();
    EXPECT_TRUE(at::allclose(y.to(at::kDouble), ref, 1e-5, 1e-6));
    EXPECT_THROW(kernels::add_rms_norm(x, r.narrow(-1, 0, 95), w, 1e-5), Error);
    EXPECT_THROW(kernels::add_rms_norm(x, r.to(at::kDouble), w, 1e-5), Error);
    EXPECT_THROW(kernels::add_rms_norm(x, r, w.narrow(0, 0, 95), 1e-5), Error);
}

TEST(SiluMul, CpuMatchesFloat64Definition) {
    at::manual_seed(6);
    const at::Tensor y = at::randn({3, 2 * 40}) * 4;  // gate and up as the halves of one product's output
    const at::Tensor gate = y.narrow(1, 0, 40), up = y.narrow(1, 40, 40);
    const at::Tensor out = kernels::silu_mul(gate, up).to(at::kDouble);
    const at::Tensor g = gate.to(at::kDouble), u = up.to(at::kDouble);
    EXPECT_TRUE(at::allclose(out, g / (1 + (-g).exp()) * u, 1e-5, 1e-6));
    EXPECT_THROW(kernels::silu_mul(gate, up.narrow(1, 0, 39)), Error);
    EXPECT_THROW(kernels::silu_mul(gate, up.to(at::kHalf)), Error);
}

TEST(KvCacheWrite, CpuWritesTheSlotAndRefusesBadInput) {
    at::manual_seed(7);
    at::Tensor kc = at::randn({2, 3, 6, 8}), vc = at::randn({2, 3, 6, 8});
    const at::Tensor k0 = kc.clone(), v0 = vc.clone();
    const at::Tensor y = at::randn({2, 1, 2 * 3 * 8});
    const at::Tensor k = y.narrow(-1, 0, 24).view({2, 1, 3, 8}).transpose(1, 2);
    const at::Tensor v = y.narrow(-1, 24, 24).view({2, 1, 3, 8}).transpose(1, 2);
    kernels::kv_cache_write(kc, vc, k, v, at::full({1}, 4, at::kLong));
    EXPECT_TRUE(at::equal(kc.select(2, 4), k.select(2, 0)) && at::equal(vc.select(2, 4), v.select(2, 0)));
    EXPECT_TRUE(at::equal(kc.narrow(2, 0, 4), k0.narrow(2, 0, 4)) && at::equal(vc.narrow(2, 5, 1), v0.narrow(2, 5, 1)));
    const at::Tensor pos = at::zeros({1}, at::kLong);
    EXPECT_THROW(kernels::kv_cache_write(kc, vc, k.narrow(3, 0, 4), v, pos), Error);  // D differs
    EXPECT_THROW(kernels::kv_cache_write(kc, vc, k, v.to(at::kDouble), pos), Error);  // dtype
    EXPECT_THROW(kernels::kv_cache_write(kc, vc, k, v, pos.to(at::kInt)), Error);     // int32 slot
    EXPECT_THROW(kernels::kv_cache_write(kc, vc, k, v, at::zeros({2}, at::kLong)), Error);
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
