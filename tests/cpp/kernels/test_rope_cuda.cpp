// Rotary embedding (kernels/rope.h) on CUDA: the fused kernel against its CPU twin (HF's
// apply_rotary_pos_emb, op by op) and against the same formula run by ATen on the GPU, bit for bit
// (the kernel makes the formula's roundings and no others). Fresh random inputs in the model's
// strided [B, H, T, D] view, one-token and longer sequences, odd head counts, every float dtype.
#include <gtest/gtest.h>

#include <array>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "../cuda_test_util.h"
#include "../lota/lota_test_util.h"
#include "kernels/rope.h"

using lota_cuda_test::poison_device_cache;

namespace {

// HF's apply_rotary_pos_emb, op by op, on whatever device the tensors are.
at::Tensor rope_formula(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t half = x.size(-1) / 2;
    const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace

TEST(RopeCuda, FusedKernelEqualsCpuTwinAndGpuFormulaBitForBit) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    int cases = 0;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (const auto& [B, H, T, D] : {std::array<int64_t, 4>{1, 32, 1, 128}, {3, 8, 17, 64}, {2, 5, 3, 6},
                                          {1, 1, 1, 2}, {2, 7, 33, 80}}) {
            at::manual_seed(B * 1000 + H * 100 + T + static_cast<int>(dtype));
            const at::Tensor x = (at::randn({B, T, H, D}) * 2).to(dtype).transpose(1, 2);  // the model's view
            const at::Tensor ang = at::rand({B, T, D / 2}) * 100;
            const at::Tensor cos = at::cat({ang, ang}, -1).cos().to(dtype);
            const at::Tensor sin = at::cat({ang, ang}, -1).sin().to(dtype);
            const at::Tensor xg = x.to(cuda), cg = cos.to(cuda), sg = sin.to(cuda);
            poison_device_cache(cuda);
            const at::Tensor y = lota::kernels::rope_rotate(xg, cg, sg).cpu();
            const std::string what = std::string(c10::toString(dtype)) + " B " + std::to_string(B) + " H " +
                                     std::to_string(H) + " T " + std::to_string(T) + " D " + std::to_string(D);
            lota_test::expect_bitwise_equal(y, lota::kernels::rope_rotate(x, cos, sin), what + ": vs CPU twin");
            lota_test::expect_bitwise_equal(y, rope_formula(xg, cg, sg).cpu(), what + ": vs ATen formula on CUDA");
            if (::testing::Test::HasFailure()) return;
            ++cases;
        }
    EXPECT_EQ(cases, 15);
}
