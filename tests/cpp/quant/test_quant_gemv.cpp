// The decode-sized quantized product (kernels/quant_gemv.h): its CPU twin and bad input in CI;
// the CUDA kernel against a float64 reference on random shapes, every bit width and group size,
// act-order, LoTA offsets and bias, with poisoned memory (skipped without CUDA).
#include <gtest/gtest.h>

#include <tuple>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "kernels/quant_gemv.h"
#include "model/quant_linear.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"
#include "util/check.h"

using namespace lota;
using lota_cuda_test::have_cuda;
using lota_cuda_test::quantized_on;

namespace {

quant::QuantizedWeight random_layer(int64_t K, int64_t N, int bits, int group, bool act_order, bool offset,
                                    bool bias) {
    quant::QuantOptions o;
    o.bits = bits;
    o.group_size = group;
    quant::QuantizedWeight qw = quant::rtn_quantize(at::randn({N, K}) * 0.05, o);
    if (act_order) qw.g_idx = qw.g_idx.index_select(0, at::randperm(K, at::kLong)).contiguous();
    if (offset) qw.offset = at::rand({qw.n_groups(), N}) - 0.5;
    if (bias) qw.bias = at::randn({N});
    return qw;
}

// y64 = x·Wᵀ + b in float64 from the spec's dequantized W; bound = |x|·|W| (the scale of the
// rounding errors any float32 accumulation order can make).
std::pair<at::Tensor, at::Tensor> reference(const quant::QuantizedWeight& qw, const at::Tensor& x) {
    const at::Tensor W = quant::dequantize(qw, at::kFloat).to(at::kDouble);  // [K, N]
    const at::Tensor xd = x.to(at::kDouble);
    at::Tensor y = xd.matmul(W);
    if (qw.bias.defined()) y = y + qw.bias.to(x.scalar_type()).to(at::kDouble);
    return {y, xd.abs().matmul(W.abs())};
}

at::Tensor run_gemv(const quant::QuantizedWeight& qw, const at::Tensor& x, int64_t group_rows,
                    const kernels::GemvTuning& tuning = {}) {
    const at::Tensor bias = qw.bias.defined() ? qw.bias.to(x.scalar_type()) : at::Tensor();
    return kernels::quant_gemv(x, qw.qweight, qw.zeros, qw.scales, qw.g_idx, qw.offset, bias, qw.bits, group_rows,
                               tuning);
}

double out_eps(at::ScalarType t) { return t == at::kBFloat16 ? 1.0 / 256 : t == at::kHalf ? 1.0 / 1024 : 0.0; }

}  // namespace

TEST(QuantGemv, CpuTwinIsTheReferenceAndGroupRowsIsDetected) {
    at::manual_seed(3);
    const quant::QuantizedWeight qw = random_layer(96, 37, 3, 32, false, true, true);
    const at::Tensor x = at::randn({2, 96});
    const auto [ref, bound] = reference(qw, x);
    const at::Tensor y = run_gemv(qw, x, 32);
    EXPECT_TRUE(((y.to(at::kDouble) - ref).abs() <= 1e-5 * bound + 1e-6).all().item<bool>());
    EXPECT_EQ(kernels::quant_gemv_group_rows(qw.g_idx, qw.n_groups()), 32);
    const quant::QuantizedWeight act = random_layer(96, 8, 4, 32, true, false, false);
    EXPECT_EQ(kernels::quant_gemv_group_rows(act.g_idx, act.n_groups()), 0);
    const quant::QuantizedWeight one = random_layer(40, 8, 4, -1, false, false, false);
    EXPECT_EQ(kernels::quant_gemv_group_rows(one.g_idx, one.n_groups()), 64);  // K rounded up to 32
}

TEST(QuantGemv, BadInputIsRefused) {
    const quant::QuantizedWeight qw = random_layer(64, 8, 4, 32, false, false, false);
    EXPECT_THROW(run_gemv(qw, at::randn({2, 63}), 32), Error);  // wrong K
    EXPECT_THROW(run_gemv(qw, at::randn({2, 64}).to(at::kInt), 32), Error);  // wrong dtype
    EXPECT_THROW(run_gemv(qw, at::randn({2, 64}), 48), Error);  // group_rows not a multiple of 32
    EXPECT_THROW(kernels::quant_gemv(at::randn({1, 64}), qw.qweight, qw.zeros, qw.scales, qw.g_idx, {},
                                     at::randn({9}), 4, 32),
                 Error);  // bias of the wrong length
}

TEST(QuantGemvCuda, MatchesFloat64ReferenceOnRandomShapes) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const at::Device cuda(at::kCUDA);
    int cases = 0;
    struct Shape { int64_t K, N; };
    // K: partial 32-row chunks and several 256-row pieces; N: odd, not a multiple of 4, multiples
    // of 4, multiples of 32 (the tensor-core kernel's shapes: 640 x 256, 1152 x 352, 128 x 64 and 64 x 96,
    // whose few rows make one K range).
    const Shape shapes[] = {{96, 203}, {640, 256}, {1344, 130}, {4224, 516}, {1152, 352}, {128, 64}, {64, 96}};
    int tc_cases = 0;
    for (int bits : {2, 3, 4, 8})
        for (int group : {32, 64, 128, -1})
            for (bool act_order : {false, true})
                for (const Shape& sh : shapes) {
                    if (group > 0 && sh.K % group != 0) continue;
                    at::manual_seed(1000 * bits + 10 * group + act_order + sh.K);
                    const bool offset = (sh.K / 32 + bits) % 2 == 0, bias = sh.N % 2 == 0;
                    const quant::QuantizedWeight qw = random_layer(sh.K, sh.N, bits, group, act_order, offset, bias);
                    const quant::QuantizedWeight qc = quantized_on(qw, cuda);
                    const int64_t group_rows = kernels::quant_gemv_group_rows(qc.g_idx, qc.n_groups());
                    if (!act_order) {
                        ASSERT_GT(group_rows, 0);
                    }
                    for (int64_t M : {1, 3, 8, 16})
                        for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf})
                        for (bool tc : {true, false}) {
                            if (dtype == at::kFloat && tc) continue;  // float32 x always runs the SIMT kernel
                            // The tensor-core kernel's conditions (quant_gemv_cuda_plan, quant_gemv_tc_eligible).
                            const int64_t step = 128 / bits;
                            tc_cases += tc && M >= 2 && (bits == 2 || bits == 4) && group_rows > 0 && group_rows % step == 0 &&
                                        sh.K % step == 0 && sh.N % 32 == 0;
                            const at::Tensor x = at::randn({M, sh.K}).to(dtype);
                            const auto [ref, bound] = reference(qw, x);
                            { at::Tensor poison = at::full({1 << 22}, NAN, at::TensorOptions().device(cuda)); }
                            kernels::GemvTuning tuning;
                            tuning.tensor_cores = tc;
                            const at::Tensor y = run_gemv(qc, x.to(cuda), group_rows, tuning).cpu();
                            ASSERT_EQ(y.scalar_type(), dtype);
                            const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                            const at::Tensor tol = 2e-5 * bound + out_eps(dtype) * ref.abs() + 1e-6;
                            ASSERT_TRUE(y.isfinite().all().item<bool>());
                            ASSERT_TRUE((err <= tol).all().item<bool>())
                                << "bits " << bits << " group " << group << " act " << act_order << " K " << sh.K
                                << " N " << sh.N << " M " << M << " dtype " << dtype << " tc " << tc << " max err "
                                << err.max().item<double>() << " at tol " << tol.min().item<double>();
                            ++cases;
                        }
                }
    std::printf("quant_gemv CUDA: %d cases (%d on tensor cores) match the float64 reference\n", cases, tc_cases);
    EXPECT_GT(cases, 300);
    EXPECT_GT(tc_cases, 100);
}

// The tensor-core kernel's plan knobs (bench_gemv --sweep) change the work split, the loads issued
// together and which row counts use it; every setting must give the same sums.
TEST(QuantGemvCuda, TensorCoreKnobsMatchFloat64Reference) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    const at::Device cuda(at::kCUDA);
    int cases = 0;
    for (int bits : {2, 4})
        for (const auto& [K, N, group] : {std::tuple<int64_t, int64_t, int>{640, 256, 64}, {1152, 352, 128},
                                          {4096, 96, 64}, {128, 64, 32}}) {
            if (group % (128 / bits) != 0) continue;  // groups shorter than a warp step: SIMT only
            at::manual_seed(77 * bits + K);
            const quant::QuantizedWeight qw = random_layer(K, N, bits, group, false, bits == 4, true);
            const quant::QuantizedWeight qc = quantized_on(qw, cuda);
            const int64_t group_rows = kernels::quant_gemv_group_rows(qc.g_idx, qc.n_groups());
            for (int64_t M : {1, 5, 16})
                for (int batch : {2, 4, 8})
                    for (double waves : {0.5, 2.0}) {
                        const at::Tensor x = at::randn({M, K}).to(at::kBFloat16);
                        const auto [ref, bound] = reference(qw, x);
                        { at::Tensor poison = at::full({1 << 22}, NAN, at::TensorOptions().device(cuda)); }
                        const at::Tensor y = run_gemv(qc, x.to(cuda), group_rows, {1, batch, waves, 0}).cpu();
                        const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                        const at::Tensor tol = 2e-5 * bound + out_eps(at::kBFloat16) * ref.abs() + 1e-6;
                        ASSERT_TRUE((err <= tol).all().item<bool>())
                            << "bits " << bits << " K " << K << " N " << N << " M " << M << " batch " << batch
                            << " waves " << waves << " max err " << err.max().item<double>();
                        ++cases;
                    }
        }
    EXPECT_EQ(cases, 2 * 4 * 3 * 3 * 2 - 3 * 3 * 2);  // 2-bit steps are 64 rows: no 32-row groups
}

TEST(QuantGemvCuda, QuantLinearUsesItForDecodeRowsOnly) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    at::manual_seed(5);
    const quant::QuantizedWeight qw = random_layer(512, 384, 4, 64, false, true, true);
    model::QuantLinear layer(qw);
    layer.to(at::Device(at::kCUDA), at::kBFloat16);
    const torch::NoGradGuard no_grad;
    const at::Tensor x = at::randn({1, 20, 512}).to(at::kBFloat16).cuda();
    const at::Tensor full = layer.forward(x);                          // 20 rows: dequant + GEMM
    const at::Tensor rows = layer.forward(x.narrow(1, 0, 4));          // 4 rows: the kernel
    EXPECT_EQ(rows.sizes(), (std::vector<int64_t>{1, 4, 384}));
    EXPECT_TRUE(at::allclose(rows.to(at::kFloat), full.narrow(1, 0, 4).to(at::kFloat), 2e-2, 2e-2));
    model::QuantLinearOptions no_gemv;
    no_gemv.gemv_max_rows = 0;
    layer.set_options(no_gemv);
    const at::Tensor off = layer.forward(x.narrow(1, 0, 4));
    EXPECT_TRUE(at::allclose(off.to(at::kFloat), full.narrow(1, 0, 4).to(at::kFloat), 1e-2, 1e-2));
}
