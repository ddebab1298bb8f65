// The decode-sized quantized product (kernels/quant_gemv.h) on the CPU: its twin against a float64
// reference, group-row detection and bad input. The CUDA kernel's suite is
// tests/cpp/kernels/test_quant_gemv_cuda.cpp.
#include <gtest/gtest.h>

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

TEST(QuantGemv, BadInputIsRefused) {
    const quant::QuantizedWeight qw = gemv_random_layer(64, 8, 4, 32, false, false, false);
    EXPECT_THROW(gemv_run(qw, at::randn({2, 63}), 32), Error);  // wrong K
    EXPECT_THROW(gemv_run(qw, at::randn({2, 64}).to(at::kInt), 32), Error);  // wrong dtype
    EXPECT_THROW(gemv_run(qw, at::randn({2, 64}), 48), Error);  // group_rows not a multiple of 32
    EXPECT_THROW(kernels::quant_gemv(at::randn({1, 64}), qw.qweight, qw.zeros, qw.scales, qw.g_idx, {},
                                     at::randn({9}), 4, 32),
                 Error);  // bias of the wrong length
}
