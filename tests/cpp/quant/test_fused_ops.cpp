// The fused decode ops, RMSNorm (kernels/rms_norm.h), the rotary embedding (kernels/rope.h) and the
// decode-step attention (kernels/decode_attention.h): their CPU paths against the definitions in float64,
// and bad input. The CUDA kernels' suites are tests/cpp/kernels/test_rms_norm_cuda.cpp, test_rope_cuda.cpp
// and test_decode_attention_cuda.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include <ATen/ATen.h>

#include "../decode_attention_test_util.h"
#include "../test_error.h"
#include "kernels/decode_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
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

namespace dat = lota_decode_attention_test;

// Every head layout, head size, dtype and new-token slot (first, middle, last) on short and long caches;
// the batch (1 or 3) varies with the case.
TEST(DecodeAttention, CpuMatchesFloat64Definition) {
    const std::array<std::pair<int64_t, int64_t>, 5> heads{{{32, 8}, {9, 3}, {14, 2}, {4, 4}, {9, 1}}};
    const std::array<at::ScalarType, 3> dtypes{at::kBFloat16, at::kHalf, at::kFloat};
    int cases = 0;
    for (size_t ti = 0; ti < dtypes.size(); ++ti) {
        double worst = 0.0;
        for (size_t hi = 0; hi < heads.size(); ++hi)
            for (int64_t D : {64, 128})
                for (int64_t S : {5, 200})
                    for (int pi = 0; pi < 3; ++pi) {
                        const auto [H, Hkv] = heads[hi];
                        const int64_t p = pi == 0 ? 0 : pi == 1 ? S / 2 : S - 1;
                        const int64_t B = (ti + hi + D / 64 + S + pi) % 2 == 0 ? 1 : 3;
                        const dat::Inputs in = dat::make_inputs(B, H, Hkv, S, D, p, dtypes[ti], 100 + cases);
                        const double scale = 1.0 / std::sqrt(static_cast<double>(D));
                        const at::Tensor o =
                            kernels::decode_attention(in.q, in.k, in.v, in.key_mask, in.write_pos, scale);
                        const std::string what = std::string(c10::toString(dtypes[ti])) + " B " + std::to_string(B) +
                                                 " H " + std::to_string(H) + " Hkv " + std::to_string(Hkv) + " D " +
                                                 std::to_string(D) + " S " + std::to_string(S) + " p " +
                                                 std::to_string(p);
                        ASSERT_EQ(o.scalar_type(), dtypes[ti]) << what;
                        ASSERT_TRUE(o.is_contiguous()) << what;
                        worst = std::max(worst, dat::expect_within_tolerance(
                                                    o, dat::reference(in.q, in.k, in.v, in.key_mask, p, scale), what));
                        if (HasFailure()) return;
                        ++cases;
                    }
        std::printf("decode_attention CPU %s: worst error %.3f of the tolerance\n", c10::toString(dtypes[ti]), worst);
    }
    EXPECT_EQ(cases, 180);
}

TEST(DecodeAttention, CpuLargeBatchLongCache) {
    const dat::Inputs in = dat::make_inputs(64, 32, 8, 1300, 128, 1000, at::kBFloat16, 7);
    const at::Tensor o = kernels::decode_attention(in.q, in.k, in.v, in.key_mask, in.write_pos, 0.125);
    dat::expect_within_tolerance(o, dat::reference(in.q, in.k, in.v, in.key_mask, in.p, 0.125), "B 64 S 1300");
}

TEST(DecodeAttention, BadInputIsRefused) {
    const dat::Inputs in = dat::make_inputs(2, 8, 2, 16, 64, 5, at::kFloat, 3);
    const auto call = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                         const at::Tensor& pos) { return kernels::decode_attention(q, k, v, mask, pos, 0.125); };
    EXPECT_NO_THROW(call(in.q, in.k, in.v, in.key_mask, in.write_pos));
    EXPECT_THROW(call(in.q, in.k.to(at::kHalf), in.v, in.key_mask, in.write_pos), Error);          // dtypes differ
    EXPECT_THROW(call(in.q.to(at::kDouble), in.k.to(at::kDouble), in.v.to(at::kDouble), in.key_mask, in.write_pos),
                 Error);                                                                           // float64
    EXPECT_THROW(call(in.q.narrow(1, 0, 7), in.k, in.v, in.key_mask, in.write_pos), Error);        // 7 % 2 != 0
    EXPECT_THROW(call(in.q.narrow(2, 0, 32), in.k, in.v, in.key_mask, in.write_pos), Error);       // D differs
    EXPECT_THROW(call(in.q, in.k, in.v.narrow(2, 0, 8), in.key_mask, in.write_pos), Error);        // v's shape
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask.narrow(1, 0, 8), in.write_pos), Error);        // mask's shape
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask.to(at::kByte), in.write_pos), Error);          // mask's dtype
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask, in.write_pos.to(at::kInt)), Error);           // int32 slot
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask, at::full({2}, 5, at::kLong)), Error);         // two slots
    const at::Tensor strided_q = at::randn({2, 8, 64, 2}).select(3, 0);
    EXPECT_THROW(call(strided_q, in.k, in.v, in.key_mask, in.write_pos), Error);                   // stride(2) 2
    const at::Tensor strided_k = at::randn({2, 2, 32, 64}).narrow(2, 0, 16);
    EXPECT_THROW(call(in.q, strided_k, in.v, in.key_mask, in.write_pos), Error);                   // not contiguous
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask, at::Tensor()), Error);
    for (int64_t p : {-1, 16}) {
        const std::string msg =
            lota_test::error_of([&] { call(in.q, in.k, in.v, in.key_mask, at::full({1}, p, at::kLong)); });
        EXPECT_NE(msg.find("write_pos is " + std::to_string(p)), std::string::npos) << msg;
    }
    EXPECT_TRUE(kernels::decode_attention_cuda_supports(32, 8, 128));
    EXPECT_TRUE(kernels::decode_attention_cuda_supports(14, 2, 64));
    EXPECT_FALSE(kernels::decode_attention_cuda_supports(9, 1, 128));   // 9 heads per kv head
    EXPECT_FALSE(kernels::decode_attention_cuda_supports(32, 8, 96));   // head size
    EXPECT_FALSE(kernels::decode_attention_cuda_supports(6, 4, 64));    // 6 % 4 != 0
}

}  // namespace
}  // namespace lota
