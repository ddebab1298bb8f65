// GPTQ (quant/gptq.h) with its Hessian and updates on CUDA against the same run on the CPU: both
// float32 with TF32 off, so they differ only in GEMM and Cholesky summation order, which can flip a
// code near a rounding tie (and the act-order of near-equal diagonal entries) and, through the error
// feedback, the codes after it. So: equal Hessians to float32 accuracy, relative output errors within
// 5% of each other, and the CUDA run clearly better than RTN.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "quant/gptq.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"

using namespace lota;

TEST(GptqCuda, MatchesCpuRun) {
    at::manual_seed(1);
    const int64_t K = 256, N = 128;
    const at::Tensor X = at::randn({512, K}).matmul(at::randn({K, K})) * 0.1, W = at::randn({N, K}) * 0.05;
    for (const int bits : {3, 4})
        for (const bool act_order : {false, true}) {
            quant::QuantOptions o;
            o.bits = bits;
            o.group_size = 64;
            o.act_order = act_order;
            quant::Gptq cpu(K), gpu(K, at::Device(at::kCUDA));
            cpu.add_batch(X);
            gpu.add_batch(X.cuda());
            EXPECT_TRUE(at::allclose(gpu.hessian().cpu(), cpu.hessian(), 1e-4, 1e-3)) << "H";
            const quant::GptqResult rc = cpu.quantize(W, o), rg = gpu.quantize(W.cuda(), o);
            const at::Tensor H = cpu.hessian(), dW = W - quant::dequantize(quant::rtn_quantize(W, o)).t();
            const double rtn = (dW.matmul(H) * dW).sum().item<double>() / (W.matmul(H) * W).sum().item<double>();
            std::printf("GPTQ %d-bit g64 act-order %d rel err: cpu %.4g, cuda %.4g, rtn %.4g\n", bits, int(act_order),
                        rc.rel_error, rg.rel_error, rtn);
            EXPECT_NEAR(rg.rel_error, rc.rel_error, 0.05 * rc.rel_error);
            EXPECT_LT(rg.rel_error, 0.8 * rtn);
        }
}
