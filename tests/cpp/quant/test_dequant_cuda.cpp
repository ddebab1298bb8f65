// CUDA twin of the dequantization op against the CPU reference (bit for bit), QuantLinear and
// GPTQ on CUDA tensors. Skipped when this build or machine has no CUDA.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "model/quant_linear.h"
#include "quant/gptq.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"

using namespace lota;
using lota_cuda_test::have_cuda;
using lota_cuda_test::quantized_on;

TEST(DequantCuda, BitExactAgainstCpuReference) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    int cases = 0;
    for (int bits : {2, 3, 4, 8})
        for (int group : {32, -1})
            for (bool act_order : {false, true})
                for (bool offset : {false, true}) {
                    at::manual_seed(bits * 100 + group + act_order);
                    const int64_t K = 96, N = 200;  // K: a partial 32-row chunk; N: not a multiple of 128
                    quant::QuantOptions o;
                    o.bits = bits;
                    o.group_size = group;
                    quant::QuantizedWeight qw = quant::rtn_quantize(at::randn({N, K}), o);
                    if (act_order) qw.g_idx = qw.g_idx.index_select(0, at::randperm(K, at::kLong)).contiguous();
                    if (offset) qw.offset = at::rand({qw.n_groups(), N}) - 0.5;
                    const quant::QuantizedWeight qc = quantized_on(qw, at::Device(at::kCUDA));
                    for (auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
                        const at::Tensor ref = quant::dequantize(qw, dtype);
                        const at::Tensor got = quant::dequantize(qc, dtype).cpu();
                        ASSERT_TRUE(at::equal(ref, got)) << "bits " << bits << " group " << group << " act "
                                                         << act_order << " offset " << offset << " dtype " << dtype;
                        ++cases;
                    }
                }
    EXPECT_EQ(cases, 96);
}

TEST(DequantCuda, QuantLinearAndGptqOnCuda) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA in this build or machine";
    at::manual_seed(1);
    const int64_t K = 256, N = 128;
    const at::Tensor X = at::randn({512, K}).matmul(at::randn({K, K})) * 0.1, W = at::randn({N, K}) * 0.05;
    quant::QuantOptions o;
    o.bits = 3;
    o.group_size = 64;
    o.act_order = true;
    quant::Gptq cpu(K), gpu(K, at::Device(at::kCUDA));
    cpu.add_batch(X);
    gpu.add_batch(X.cuda());
    const quant::GptqResult rc = cpu.quantize(W, o), rg = gpu.quantize(W.cuda(), o);
    const at::Tensor H = cpu.hessian(), dW = W - quant::dequantize(quant::rtn_quantize(W, o)).t();
    const double rtn = (dW.matmul(H) * dW).sum().item<double>() / (W.matmul(H) * W).sum().item<double>();
    std::printf("GPTQ 3-bit g64 act-order rel err: cpu %.4g, cuda %.4g, rtn %.4g\n", rc.rel_error, rg.rel_error, rtn);
    EXPECT_NEAR(rg.rel_error, rc.rel_error, 0.05 * rc.rel_error);
    EXPECT_LT(rg.rel_error, rtn);
    // QuantLinear with a shared buffer on CUDA equals the CPU layer (up to GEMM order).
    model::QuantLinear lc(rg.qw), lg(rg.qw, std::make_shared<model::DequantBuffer>());
    lg.to(at::Device(at::kCUDA), at::kFloat);
    const torch::NoGradGuard no_grad;
    const at::Tensor x = at::randn({3, 7, K});
    EXPECT_TRUE(at::allclose(lg.forward(x.cuda()).cpu(), lc.forward(x), 1e-4, 1e-4));
    lg.to(at::Device(at::kCUDA), at::kBFloat16);
    EXPECT_EQ(lg.forward(x.cuda().to(at::kBFloat16)).scalar_type(), at::kBFloat16);
}

#ifdef LOTA_WITH_CUDA
#include <chrono>

#include <c10/cuda/CUDAFunctions.h>

TEST(DequantCuda, TimingLlama8bDownProj) {
    if (!have_cuda()) GTEST_SKIP() << "no CUDA on this machine";
    // Llama-3.1-8B down_proj: K = 14336, N = 4096, 4-bit g128 -> bf16 [K, N].
    const int64_t K = 14336, N = 4096;
    quant::QuantizedWeight qw;
    qw.bits = 4;
    qw.group_size = 128;
    qw.in_features = K;
    qw.out_features = N;
    const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
    qw.qweight = at::randint(INT32_MIN, INT32_MAX, {K / 8, N}, cuda.dtype(at::kInt));
    qw.zeros = at::randint(0, 16, {K / 128, N}, cuda.dtype(at::kInt));
    qw.scales = at::rand({K / 128, N}, cuda.dtype(at::kHalf));
    qw.g_idx = at::arange(K, cuda.dtype(at::kInt)).div(128, "floor").to(at::kInt);
    at::Tensor out = quant::dequantize(qw, at::kBFloat16);
    c10::cuda::device_synchronize();
    const int reps = 50;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) quant::dequantize(qw, at::kBFloat16);
    c10::cuda::device_synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    const double bytes = double(K) * N / 2 + double(K) * N * 2 + 2.0 * (K / 128) * N * 6;
    std::printf("dequant 4-bit [%lld x %lld] -> bf16: %.1f us, %.0f GB/s (read codes + write bf16)\n", (long long)K,
                (long long)N, s * 1e6, bytes / s / 1e9);
    EXPECT_GT(out.numel(), 0);
}
#endif
