// The decode-sized quantized product (kernels/quant_gemv.h) on the CPU: the packed-code kernel and
// the act-order reference against a float64 reference, group-row detection and bad input. The CUDA kernel's suite is
// tests/cpp/kernels/test_quant_gemv_cuda.cpp.
#include <gtest/gtest.h>

#include <tuple>

#include <ATen/ATen.h>

#include "gemv_test_util.h"
#include "kernels/quant_gemv.h"
#include "quant/quantized_weight.h"
#include "util/check.h"

using namespace lota;
using lota_test::gemv_random_layer;
using lota_test::gemv_reference;
using lota_test::gemv_run;

TEST(QuantGemv, CpuTwinIsTheReferenceAndGroupRowsIsDetected) {
    at::manual_seed(3);
    const quant::QuantizedWeight qw = gemv_random_layer(96, 37, 3, 32, false, true, true);
    const at::Tensor x = at::randn({2, 96});
    const auto [ref, bound] = gemv_reference(qw, x);
    const at::Tensor y = gemv_run(qw, x, 32);
    EXPECT_TRUE(((y.to(at::kDouble) - ref).abs() <= 1e-5 * bound + 1e-6).all().item<bool>());
    EXPECT_EQ(kernels::quant_gemv_group_rows(qw.g_idx, qw.n_groups()), 32);
    const quant::QuantizedWeight act = gemv_random_layer(96, 8, 4, 32, true, false, false);
    EXPECT_EQ(kernels::quant_gemv_group_rows(act.g_idx, act.n_groups()), 0);
    const quant::QuantizedWeight one = gemv_random_layer(40, 8, 4, -1, false, false, false);
    EXPECT_EQ(kernels::quant_gemv_group_rows(one.g_idx, one.n_groups()), 64);  // K rounded up to 32
}

// Every code width, with and without offsets and bias, column counts that are not a multiple of the
// kernel's 64-column blocks, row counts across its 16-row tiles, one group (also K < 32)
// and many, each output dtype: within float32 rounding of the float64 product (the bound scales with
// |x|·|W|, which covers any summation order) plus the output's one rounding.
TEST(QuantGemv, CpuKernelMatchesFloat64OnRandomShapes) {
    int cases = 0;
    for (int bits : {2, 3, 4, 8})
        for (auto [K, N, group] : {std::tuple<int64_t, int64_t, int>{128, 64, 32}, {256, 160, 64},
                                   {96, 96, 32}, {224, 224, -1}, {512, 96, 128}, {40, 40, -1}})
            for (int64_t M : {1, 3, 16, 19})
                for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
                    if (K * bits % 32 != 0 || N * bits % 32 != 0) continue;
                    at::manual_seed(bits * 1000 + K + N + M);
                    const bool extras = (M + bits) % 2 == 0;
                    const quant::QuantizedWeight qw = gemv_random_layer(K, N, bits, group, false, extras, extras);
                    const int64_t rows = kernels::quant_gemv_group_rows(qw.g_idx, qw.n_groups());
                    ASSERT_GT(rows, 0);
                    const at::Tensor x = at::randn({M, K}).to(dtype);
                    const auto [ref, bound] = gemv_reference(qw, x);
                    const at::Tensor y = gemv_run(qw, x, rows);
                    ASSERT_EQ(y.scalar_type(), dtype);
                    ASSERT_EQ(y.sizes(), ref.sizes());
                    const double eps = lota_test::gemv_out_eps(dtype);
                    const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                    EXPECT_TRUE((err <= 2e-6 * bound + eps * ref.abs() + 1e-6).all().item<bool>())
                        << "bits " << bits << " K " << K << " N " << N << " group " << group << " M " << M
                        << " dtype " << dtype << " max err " << err.max().item<double>();
                    ++cases;
                }
    EXPECT_EQ(cases, 4 * 5 * 4 * 3 + 2 * 4 * 3);  // every shape whose codes pack
}

// Act-order layers (g_idx not contiguous) take the reference: dequantize, then one GEMM.
TEST(QuantGemv, CpuActOrderUsesTheReference) {
    at::manual_seed(5);
    const quant::QuantizedWeight qw = gemv_random_layer(128, 48, 4, 32, true, true, false);
    const at::Tensor x = at::randn({2, 128});
    const at::Tensor expect = x.matmul(quant::dequantize(qw, at::kFloat));
    EXPECT_TRUE(at::equal(gemv_run(qw, x, 0), expect));
}

TEST(QuantGemv, BadInputIsRefused) {
    const quant::QuantizedWeight qw = gemv_random_layer(64, 8, 4, 32, false, false, false);
    EXPECT_THROW(gemv_run(qw, at::randn({2, 63}), 32), Error);  // wrong K
    EXPECT_THROW(gemv_run(qw, at::randn({2, 64}).to(at::kInt), 32), Error);  // wrong dtype
    EXPECT_THROW(gemv_run(qw, at::randn({2, 64}), 48), Error);  // group_rows not a multiple of 32
    EXPECT_THROW(kernels::quant_gemv(at::randn({1, 64}), qw.qweight, qw.zeros, qw.scales, qw.g_idx, {},
                                     at::randn({9}), 4, 32),
                 Error);  // bias of the wrong length
}
