// Dequantization (kernels/dequant.h): the CUDA kernel against its CPU twin, bit for bit (both
// evaluate kernels::dequant_value in float32 and round once). Fresh random layers per case; shapes
// sweep partial 32-row chunks, column counts around the 128-column blocks, group sizes that do and
// do not divide the chunks, per-channel groups, act-order, LoTA offsets, every bit width and dtype.
#include <gtest/gtest.h>

#include <string>

#include <ATen/ATen.h>

#include "../cuda_test_util.h"
#include "../lota/lota_test_util.h"
#include "kernels/dequant.h"
#include "quant/quantized_weight.h"

using namespace lota;
using lota_cuda_test::poison_device_cache;
using lota_cuda_test::quantized_on;

TEST(DequantCuda, BitExactAgainstCpuTwin) {
    const at::Device cuda(at::kCUDA);
    struct Shape { int64_t K, N; };
    // K 48: a partial 32-row chunk; 160: five chunks; 1024: many. N 1 and 129: partial blocks of 128.
    const Shape shapes[] = {{48, 1}, {96, 200}, {160, 129}, {1024, 64}};
    int cases = 0;
    uint64_t seed = 100;
    for (const Shape& sh : shapes)
        for (int bits : {2, 3, 4, 8})
            for (int64_t g : {int64_t(16), int64_t(32), int64_t(64), sh.K})
                for (bool act_order : {false, true})
                    for (bool offset : {false, true}) {
                        if (sh.K * bits % 32 != 0 || sh.K % g != 0) continue;
                        at::Generator gen = lota_test::make_gen(++seed);
                        quant::QuantizedWeight qw = lota_test::make_layer(sh.K, sh.N, bits, g, act_order, gen);
                        if (offset) qw.offset = at::rand({qw.n_groups(), sh.N}, gen) - 0.5;
                        const quant::QuantizedWeight qc = quantized_on(qw, cuda);
                        for (auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
                            const std::string what = "K " + std::to_string(sh.K) + " N " + std::to_string(sh.N) +
                                                     " bits " + std::to_string(bits) + " g " + std::to_string(g) +
                                                     " act " + std::to_string(act_order) + " offset " +
                                                     std::to_string(offset) + " " + c10::toString(dtype);
                            const at::Tensor ref = quant::dequantize(qw, dtype);
                            poison_device_cache(cuda);
                            const at::Tensor got = quant::dequantize(qc, dtype);
                            ASSERT_TRUE(got.is_cuda()) << what;
                            lota_test::expect_bitwise_equal(got.cpu(), ref, what);
                            if (::testing::Test::HasFailure()) return;
                            ++cases;
                        }
                    }
    std::printf("dequant CUDA: %d cases equal the CPU twin bit for bit\n", cases);
    EXPECT_GE(cases, 400);
}

TEST(DequantCuda, ReusedOutputBufferIsOverwritten) {
    // dequant_forward writes into a caller's buffer (the shared dequant buffer of the model): a
    // buffer full of NaN must come back equal to a fresh result.
    const at::Device cuda(at::kCUDA);
    at::Generator gen = lota_test::make_gen(7);
    const quant::QuantizedWeight qw = lota_test::make_layer(256, 96, 4, 64, true, gen);
    const quant::QuantizedWeight qc = quantized_on(qw, cuda);
    at::Tensor out = at::full({256, 96}, NAN, at::TensorOptions().device(cuda).dtype(at::kBFloat16));
    const at::Tensor got = kernels::dequant_forward(qc.qweight, qc.zeros, qc.scales, qc.g_idx, qc.offset, qc.bits,
                                                    at::kBFloat16, out);
    EXPECT_EQ(got.data_ptr(), out.data_ptr());
    lota_test::expect_bitwise_equal(out.cpu(), quant::dequantize(qw, at::kBFloat16), "reused buffer");
}
