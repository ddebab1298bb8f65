// The decode-sized quantized product (kernels/quant_gemv.h) on CUDA, SIMT and tensor-core kernels,
// against a float64 reference of the spec's dequantized weight: random layers and inputs per case,
// every bit width and group size, per-channel groups over a K that is not a multiple of 32,
// act-order, LoTA offsets and bias, one-token and multi-row batches, each output poisoned first.
// The CPU twin's tests are in tests/cpp/quant/test_quant_gemv.cpp.
#include <gtest/gtest.h>

#include <tuple>

#include <ATen/ATen.h>

#include "../cuda_test_util.h"
#include "../quant/gemv_test_util.h"
#include "kernels/quant_gemv.h"
#include "quant/quantized_weight.h"

using namespace lota;
using lota_cuda_test::poison_device_cache;
using lota_cuda_test::quantized_on;
using lota_test::gemv_out_eps;
using lota_test::gemv_random_layer;
using lota_test::gemv_reference;
using lota_test::gemv_run;

TEST(QuantGemvCuda, MatchesFloat64ReferenceOnRandomShapes) {
    const at::Device cuda(at::kCUDA);
    int cases = 0, tc_cases = 0;
    struct Shape { int64_t K, N; };
    // K: partial 32-row chunks (40, per-channel only) and several 256-row pieces; N: odd, not a
    // multiple of 4, multiples of 4, multiples of 32 (the tensor-core kernel's shapes: 640 x 256,
    // 1152 x 352, 128 x 64 and 64 x 96, whose few rows make one K range).
    const Shape shapes[] = {{40, 72},    {96, 203},   {640, 256}, {1344, 130},
                            {4224, 516}, {1152, 352}, {128, 64},  {64, 96}};
    for (int bits : {2, 3, 4, 8})
        for (int group : {32, 64, 128, -1})
            for (bool act_order : {false, true})
                for (const Shape& sh : shapes) {
                    if ((group > 0 && sh.K % group != 0) || sh.K * bits % 32 != 0) continue;
                    at::manual_seed(1000 * bits + 10 * group + act_order + sh.K);
                    const bool offset = (sh.K / 32 + bits) % 2 == 0, bias = sh.N % 2 == 0;
                    const quant::QuantizedWeight qw =
                        gemv_random_layer(sh.K, sh.N, bits, group, act_order, offset, bias);
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
                                tc_cases += tc && (bits == 2 || bits == 4) && group_rows > 0 &&
                                            group_rows % step == 0 && sh.K % step == 0 && sh.N % 32 == 0;
                                const at::Tensor x = at::randn({M, sh.K}).to(dtype);
                                const auto [ref, bound] = gemv_reference(qw, x);
                                poison_device_cache(cuda);
                                kernels::GemvTuning tuning;
                                tuning.tensor_cores = tc;
                                const at::Tensor y = gemv_run(qc, x.to(cuda), group_rows, tuning).cpu();
                                ASSERT_EQ(y.scalar_type(), dtype);
                                const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                                const at::Tensor tol = 2e-5 * bound + gemv_out_eps(dtype) * ref.abs() + 1e-6;
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

// The tensor-core kernels' plan knobs (bench_gemv --sweep) change the work split, the loads issued
// together, which row counts use them and, up to 8 rows, whether the codes are mma's A or B operand and
// whether x goes through shared memory; every setting must give the same sums.
TEST(QuantGemvCuda, TensorCoreKnobsMatchFloat64Reference) {
    const at::Device cuda(at::kCUDA);
    int cases = 0;
    for (int bits : {2, 4})
        for (const auto& [K, N, group] : {std::tuple<int64_t, int64_t, int>{640, 256, 64}, {1152, 352, 128},
                                          {4096, 96, 64}, {128, 64, 32}}) {
            if (group % (128 / bits) != 0) continue;  // groups shorter than a warp step: SIMT only
            at::manual_seed(77 * bits + K);
            const quant::QuantizedWeight qw = gemv_random_layer(K, N, bits, group, false, bits == 4, true);
            const quant::QuantizedWeight qc = quantized_on(qw, cuda);
            const int64_t group_rows = kernels::quant_gemv_group_rows(qc.g_idx, qc.n_groups());
            for (int64_t M : {1, 5, 16})
                for (int a_rows : {-1, 8})  // codes as B at every row count; as A up to 8 rows
                    for (int batch : {2, 4, 8})
                        for (const auto& [waves, block_steps, x_smem] :
                             {std::tuple<double, double, int>{0.5, 0, 1}, {2.0, 0, -1}, {0, 0, 0}}) {
                            const at::Tensor x = at::randn({M, K}).to(at::kBFloat16);
                            const auto [ref, bound] = gemv_reference(qw, x);
                            poison_device_cache(cuda);
                            // K ranges for 0.5 or 2 waves, or the default (whole waves, tc_block_steps); launched
                            // to start early (programmatic dependent launch) except at 0.5 waves; codes as A: x
                            // through shared memory (the default) or registers
                            const int pdl = waves == 0.5 ? -1 : 0, simt = 0;
                            const kernels::GemvTuning tuning{1, a_rows, batch, waves, simt, true, pdl, block_steps,
                                                             x_smem};
                            const at::Tensor y = gemv_run(qc, x.to(cuda), group_rows, tuning).cpu();
                            const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                            const at::Tensor tol = 2e-5 * bound + gemv_out_eps(at::kBFloat16) * ref.abs() + 1e-6;
                            ASSERT_TRUE((err <= tol).all().item<bool>())
                                << "bits " << bits << " K " << K << " N " << N << " M " << M << " codes as "
                                << (a_rows > 0 && M <= 8 ? "A" : "B") << " batch " << batch << " waves " << waves
                                << " block steps " << block_steps << " x through shared memory " << x_smem
                                << " max err " << err.max().item<double>();
                            ++cases;
                        }
        }
    EXPECT_EQ(cases, 2 * (2 * 4 * 3 * 3 * 3 - 3 * 3 * 3));  // 2-bit steps are 64 rows: no 32-row groups
}

// The SIMT kernel's work split (GemvTuning::simt_blocks_per_sm; -1: as many blocks as fit on an SM, from
// the occupancy API): K ranges of one chunk up to several 256-row pieces, one and four slices (N above and
// below 8192), odd chunk counts, act-order. Every split must give the same sums.
TEST(QuantGemvCuda, SimtWorkSplitsMatchFloat64Reference) {
    const at::Device cuda(at::kCUDA);
    int cases = 0;
    for (int bits : {2, 3, 4, 8})
        for (const auto& [K, N, group] : {std::tuple<int64_t, int64_t, int>{2048, 260, 64}, {1184, 8448, 32},
                                          {96, 64, 32}, {4096, 1024, 128}})
            for (bool act_order : {false, true}) {
                at::manual_seed(31 * bits + K + act_order);
                const quant::QuantizedWeight qw = gemv_random_layer(K, N, bits, group, act_order, bits != 8, true);
                const quant::QuantizedWeight qc = quantized_on(qw, cuda);
                const int64_t group_rows = kernels::quant_gemv_group_rows(qc.g_idx, qc.n_groups());
                for (int64_t M : {1, 3})
                    for (int blocks_per_sm : {1, 32, -1}) {
                        const at::Tensor x = at::randn({M, K}).to(at::kBFloat16);
                        const auto [ref, bound] = gemv_reference(qw, x);
                        kernels::GemvTuning tuning;
                        tuning.tensor_cores = false;
                        tuning.simt_blocks_per_sm = blocks_per_sm;
                        poison_device_cache(cuda);
                        const at::Tensor y = gemv_run(qc, x.to(cuda), group_rows, tuning).cpu();
                        const at::Tensor err = (y.to(at::kDouble) - ref).abs();
                        const at::Tensor tol = 2e-5 * bound + gemv_out_eps(at::kBFloat16) * ref.abs() + 1e-6;
                        ASSERT_TRUE(y.isfinite().all().item<bool>());
                        ASSERT_TRUE((err <= tol).all().item<bool>())
                            << "bits " << bits << " K " << K << " N " << N << " act " << act_order << " M " << M
                            << " blocks/SM " << blocks_per_sm << " max err " << err.max().item<double>();
                        ++cases;
                    }
            }
    EXPECT_EQ(cases, 4 * 4 * 2 * 2 * 3);
}
