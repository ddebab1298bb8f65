// Decode-step attention (kernels/decode_attention.h) on CUDA: the kernel against the op's definition in float64
// (tests/cpp/decode_attention_test_util.h) for group sizes 1 to 8, both head sizes, every float dtype, short and
// long caches with the new token first, in the middle and last, and batches whose caches are and are not cut
// into slot ranges; outputs poisoned first, slots past p hold NaN. Then the op captured in a CUDA graph and
// replayed with write_pos and key_mask changed in place, which shows that the kernel reads p on the device.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/types.h>

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "../cuda_test_util.h"
#include "../decode_attention_test_util.h"
#include "kernels/decode_attention.h"
#include "util/check.h"

using lota_cuda_test::poison_device_cache;
namespace dat = lota_decode_attention_test;

namespace {

std::string case_name(at::ScalarType dt, int64_t B, int64_t H, int64_t Hkv, int64_t S, int64_t D, int64_t p) {
    return std::string(c10::toString(dt)) + " B " + std::to_string(B) + " H " + std::to_string(H) + " Hkv " +
           std::to_string(Hkv) + " S " + std::to_string(S) + " D " + std::to_string(D) + " p " + std::to_string(p);
}

}  // namespace

// The batch (1, 3 or 64) varies with the case, so that each head layout, head size, cache length and slot
// meets several batches: small B·Hkv cuts the cache into slot ranges merged by a second kernel, B = 64 with
// 8 kv heads does not.
TEST(DecodeAttentionCuda, MatchesFloat64Definition) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    const std::array<std::pair<int64_t, int64_t>, 6> heads{{{32, 8}, {9, 3}, {14, 2}, {4, 4}, {16, 8}, {8, 1}}};
    const std::array<at::ScalarType, 3> dtypes{at::kBFloat16, at::kHalf, at::kFloat};
    const std::array<int64_t, 3> batches{1, 3, 64};
    int cases = 0;
    for (size_t ti = 0; ti < dtypes.size(); ++ti) {
        double worst = 0.0;
        for (size_t hi = 0; hi < heads.size(); ++hi)
            for (int64_t D : {64, 128})
                for (size_t si = 0; si < 3; ++si)
                    for (int pi = 0; pi < 3; ++pi) {
                        const auto [H, Hkv] = heads[hi];
                        const int64_t S = std::array<int64_t, 3>{5, 200, 1300}[si];
                        const int64_t p = pi == 0 ? 0 : pi == 1 ? S / 2 : S - 1;
                        const int64_t B = batches[(ti + hi + D / 64 + si + pi) % 3];
                        const dat::Inputs in = dat::make_inputs(B, H, Hkv, S, D, p, dtypes[ti], 1000 + cases, cuda);
                        const double scale = 1.0 / std::sqrt(static_cast<double>(D));
                        poison_device_cache(cuda);
                        const at::Tensor o =
                            lota::kernels::decode_attention(in.q, in.k, in.v, in.key_mask, in.write_pos, scale);
                        const std::string what = case_name(dtypes[ti], B, H, Hkv, S, D, p);
                        ASSERT_EQ(o.scalar_type(), dtypes[ti]) << what;
                        ASSERT_TRUE(o.is_cuda() && o.is_contiguous()) << what;
                        worst = std::max(worst, dat::expect_within_tolerance(
                                                    o, dat::reference(in.q, in.k, in.v, in.key_mask, p, scale), what));
                        if (HasFailure()) return;
                        ++cases;
                    }
        std::printf("decode_attention CUDA %s: worst error %.3f of the tolerance\n", c10::toString(dtypes[ti]), worst);
    }
    EXPECT_EQ(cases, 324);
}

// Captured once with p = S/5, replayed with p = S − 1, then S/2, each time with a key_mask that drops other
// slots; write_pos and key_mask are written in place between replays, as a decode loop does.
TEST(DecodeAttentionCuda, GraphReplayFollowsWritePosAndKeyMask) {
#ifdef LOTA_WITH_CUDA
    const at::Device cuda(at::kCUDA, static_cast<c10::DeviceIndex>(c10::cuda::current_device()));
    const torch::NoGradGuard no_grad;
    const at::TensorOptions f32 = at::TensorOptions().device(cuda);
    struct Config {
        int64_t B, H, Hkv, S, D;
        at::ScalarType dt;
    };
    // 8 blocks (ranges of the cache), 128 blocks (a few ranges) and 512 blocks (one range each).
    for (const Config& c : {Config{1, 32, 8, 1300, 128, at::kBFloat16}, Config{64, 14, 2, 200, 64, at::kHalf},
                            Config{64, 32, 8, 300, 128, at::kFloat}}) {
        // Every slot filled, padding of at most S/10 slots; slots masked in in.key_mask hold outliers, and
        // each phase masks a few more.
        const dat::Inputs in = dat::make_inputs(c.B, c.H, c.Hkv, c.S, c.D, c.S - 1, c.dt, 77, cuda, c.S / 10);
        const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
        const std::array<int64_t, 3> ps{c.S / 5, c.S - 1, c.S / 2};
        std::vector<at::Tensor> masks;
        for (int i = 0; i < 3; ++i)
            masks.push_back(in.key_mask.logical_and(at::rand({c.B, c.S}, f32).ge(0.1 * i)));
        at::Tensor write_pos = at::full({1}, ps[0], f32.dtype(at::kLong));
        at::Tensor key_mask = masks[0].clone();
        lota::kernels::decode_attention(in.q, in.k, in.v, key_mask, write_pos, scale);  // eager first, as a decode loop
        c10::cuda::device_synchronize();
        // Captured on a side stream (not the default one), as model/decode_graph.cpp does.
        const at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, cuda.index());
        at::cuda::CUDAGraph graph;
        at::Tensor out;
        {
            const at::cuda::CUDAStreamGuard guard(side);
            graph.capture_begin();
            out = lota::kernels::decode_attention(in.q, in.k, in.v, key_mask, write_pos, scale);
            graph.capture_end();
        }
        for (int i = 0; i < 3; ++i) {
            write_pos.fill_(ps[i]);
            key_mask.copy_(masks[i]);
            out.fill_(NAN);
            graph.replay();
            const std::string what = "graph replay " + std::to_string(i) + ": " +
                                     case_name(c.dt, c.B, c.H, c.Hkv, c.S, c.D, ps[i]);
            dat::expect_within_tolerance(out, dat::reference(in.q, in.k, in.v, masks[i], ps[i], scale), what);
            if (HasFailure()) return;
        }
    }
#else
    GTEST_FAIL() << lota_cuda_test::cuda_absence_reason();
#endif
}

TEST(DecodeAttentionCuda, OutOfRangeWritePosIsClampedAndBadInputRefused) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    const dat::Inputs in = dat::make_inputs(3, 8, 2, 100, 64, 99, at::kFloat, 5, cuda);
    const auto call = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                          const at::Tensor& pos) { return lota::kernels::decode_attention(q, k, v, mask, pos, 0.125); };
    // The caller promises 0 <= p < S; the kernel still keeps its reads inside the cache.
    const at::TensorOptions i64 = at::TensorOptions().device(cuda).dtype(at::kLong);
    dat::expect_within_tolerance(call(in.q, in.k, in.v, in.key_mask, at::full({1}, 100 + 1000, i64)),
                                 dat::reference(in.q, in.k, in.v, in.key_mask, 99, 0.125), "write_pos past the cache");
    const at::Tensor o0 = call(in.q, in.k, in.v, in.key_mask, at::full({1}, -5, i64));
    dat::expect_within_tolerance(o0, dat::reference(in.q, in.k, in.v, in.key_mask, 0, 0.125), "negative write_pos");
    // Shapes the kernel is not built for: 9 query heads per kv head, head size 96.
    const at::TensorOptions f32 = at::TensorOptions().device(cuda);
    const at::Tensor q9 = at::randn({3, 9, 64}, f32), k1 = at::randn({3, 1, 100, 64}, f32);
    EXPECT_THROW(call(q9, k1, k1, in.key_mask, in.write_pos), lota::Error);
    const at::Tensor q96 = at::randn({3, 8, 96}, f32), k96 = at::randn({3, 2, 100, 96}, f32);
    EXPECT_THROW(call(q96, k96, k96, in.key_mask, in.write_pos), lota::Error);
    // A cache that starts 4 bytes into its storage (vector loads need 16-byte rows).
    const at::Tensor shifted =
        at::empty({in.k.numel() + 1}, in.k.options()).narrow(0, 1, in.k.numel()).view(in.k.sizes());
    EXPECT_THROW(call(in.q, shifted, in.v, in.key_mask, in.write_pos), lota::Error);
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask.cpu(), in.write_pos), lota::Error);  // devices differ
    EXPECT_THROW(call(in.q, in.k, in.v, in.key_mask, in.write_pos.cpu()), lota::Error);
}
