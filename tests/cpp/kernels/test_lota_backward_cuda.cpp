// The adapter backward of LoTA-QAF (quant/lota.h lota_backward) on CUDA against the float32 CPU
// backward of the same Gw: float32 Gw to float32 accuracy, and the 16-bit Gw paths (bfloat16 on
// tensor cores; float16 through float32) within their bounds. Fresh random layers, adapters and
// gradients per case; shapes sweep ranks, group sizes (per-channel too), act-order, N not a
// multiple of 8.
#include <gtest/gtest.h>

#include <string>

#include <ATen/ATen.h>

#include "../cuda_test_util.h"
#include "../lota/lota_test_util.h"
#include "quant/lota.h"
#include "quant/quantized_weight.h"

using namespace lota::quant;
using namespace lota_test;
using lota_cuda_test::poison_device_cache;

// Note [16-bit adapter gradients]: with a bfloat16 Gw on CUDA, Gs is rounded to bfloat16 once and the
// GEMMs run on tensor cores. Against the float32 CPU backward of the same Gw the gradients agree to
// the size of one bfloat16 rounding (relative error of the whole tensor, and per element against the
// tensor's largest entry), with act-order and without. A float16 Gw takes the float32 path: S·Gw of
// gradients this small lands in float16's subnormals, so it must agree to float32 accuracy, as must
// a float32 Gw (the same sums in another order).
TEST(LotaBackwardCuda, MatchesFloat32CpuBackward) {
    const at::Device cuda(at::kCUDA);
    at::Generator gen = make_gen(731);
    struct Shape { int64_t K, N, r, g; };
    const Shape shapes[] = {{512, 192, 16, 64}, {96, 44, 4, 32}, {256, 8, 1, 256}, {1024, 136, 64, 128}};
    int cases = 0;
    for (const Shape& sh : shapes)
        for (const at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf})
            for (const bool act_order : {false, true}) {
                const int64_t G = sh.K / sh.g;
                const double omega = 0.75 * sh.r;
                const QuantizedWeight layer = make_layer(sh.K, sh.N, 4, sh.g, act_order, gen);
                const at::Tensor a_t = rand_ternary({sh.r, sh.K}, gen), b_t = rand_ternary({sh.N, sh.r}, gen);
                const at::Tensor gw = (at::randn({sh.K, sh.N}, gen) * 1e-3).to(dt);  // a x^T·dy of dtype dt
                const LotaGroups gc = lota_groups_make(layer.g_idx, G);
                const LotaGroups gd = lota_groups_make(layer.g_idx.to(cuda), G);
                const LotaGrads ref = lota_backward(gw.to(at::kFloat), layer.scales, gc, omega, a_t, b_t);
                poison_device_cache(cuda);
                const LotaGrads got = lota_backward(gw.to(cuda), layer.scales.to(cuda), gd, omega, a_t.to(cuda),
                                                    b_t.to(cuda), true);
                const double tol = dt == at::kBFloat16 ? 1.0 / 256 : 1e-5;  // bf16 unit roundoff; float32 path
                const std::string what = "K " + std::to_string(sh.K) + " N " + std::to_string(sh.N) + " r " +
                                         std::to_string(sh.r) + " g " + std::to_string(sh.g) + " " +
                                         c10::toString(dt) + ", act-order " + std::to_string(act_order);
                ASSERT_EQ(got.a_t.scalar_type(), at::kFloat) << what;
                ASSERT_EQ(got.b_t.scalar_type(), at::kFloat) << what;
                for (int i = 0; i < 2; ++i) {
                    const at::Tensor x = (i == 0 ? got.a_t : got.b_t).cpu().to(at::kDouble);
                    const at::Tensor y = (i == 0 ? ref.a_t : ref.b_t).to(at::kDouble);
                    const double rel = ((x - y).norm() / y.norm()).item<double>();
                    EXPECT_LT(rel, tol) << what << (i == 0 ? ": dA" : ": dB") << " relative error";
                    expect_close(x, y, 4 * tol * y.abs().max().item<double>(), 0, what + (i == 0 ? ": dA" : ": dB"));
                }
                ++cases;
            }
    EXPECT_EQ(cases, 24);
}
