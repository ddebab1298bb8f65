// A decode step's attention (kernels/decode_attention.h) on CUDA, the one-kernel path: against the float64
// definition on fresh random inputs (the model's fused q/k/v views, random padding masks that also
// attend slots past the write position), every float dtype, head sizes 64/128/256, 1 to 8 query heads per
// kv head, one range of slots and many; the write of the new key and value, and no other slot touched;
// against the ATen-op path on the same GPU; a row with only itself to attend returns its value exactly;
// captured in a CUDA graph, replays follow the write position on the device.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/types.h>

#ifdef LOTA_WITH_CUDA  // the CUDA headers exist only in a CUDA build of LibTorch
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "../cuda_test_util.h"
#include "../decode_attention_reference.h"
#include "kernels/decode_attention.h"

using lota_cuda_test::poison_device_cache;
using lota_test::DecodeAttentionCase;

namespace {

double tolerance(at::ScalarType dtype) { return dtype == at::kFloat ? 2e-5 : dtype == at::kHalf ? 2e-3 : 1.6e-2; }

// Runs the kernel on a copy of the case's caches; checks o against float64 and the caches' write.
void check_case(const DecodeAttentionCase& c, int64_t chunk_keys = 0) {
    const std::string what = lota_test::describe(c) + " chunk " + std::to_string(chunk_keys);
    at::Tensor kc = c.k_cache.clone(), vc = c.v_cache.clone();
    poison_device_cache(c.q.device());
    const at::Tensor o = lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, kc, vc, c.key_mask,
                                                         c.write_pos, c.scale, {}, true, chunk_keys);
    const at::Tensor ref = lota_test::decode_attention_reference(c);
    const at::Tensor got = o.cpu().to(at::kDouble);
    const double tol = tolerance(c.q.scalar_type());
    const double err = (got - ref).abs().max().item<double>();
    EXPECT_TRUE(got.isfinite().all().item<bool>()) << what;
    EXPECT_LE(err, tol * std::max(1.0, ref.abs().max().item<double>())) << what;
    const auto [k_want, v_want] = lota_test::decode_attention_expected_caches(c);
    EXPECT_TRUE(at::equal(kc.cpu(), k_want) && at::equal(vc.cpu(), v_want)) << what << ": caches";
}

// Query heads, kv heads and head size of a case.
struct Heads {
    int64_t H, Hkv, D;
};

}  // namespace

TEST(DecodeAttentionCuda, MatchesFloat64Definition) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    int cases = 0;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (Heads h : {Heads{32, 8, 128}, Heads{9, 3, 64}, Heads{4, 4, 256}, Heads{16, 2, 128}, Heads{7, 1, 64}})
            for (int64_t S : {1, 37, 300, 2100})
                for (int64_t p : {int64_t(0), S / 2, S - 1}) {
                    const int64_t B = S == 2100 ? 1 : 3;
                    at::manual_seed(cases);
                    const DecodeAttentionCase c = lota_test::make_decode_attention_case(B, h.H, h.Hkv, S, h.D, p,
                                                                                        dtype, cuda);
                    check_case(c);
                    ++cases;
                }
    std::printf("decode attention: %d cases against float64\n", cases);
}

TEST(DecodeAttentionCuda, EveryRangeSizeMatchesFloat64Definition) {
    // Ranges of 32 to 256 slots: 1 to 64 slots a warp (both words of its mask bits), loaded ahead or not.
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    int cases = 0;
    for (auto dtype : {at::kBFloat16, at::kFloat})
        for (Heads h : {Heads{32, 8, 128}, Heads{16, 2, 128}, Heads{8, 1, 256}})
            for (int64_t chunk : {32, 96, 256}) {
                at::manual_seed(100 + cases++);
                check_case(lota_test::make_decode_attention_case(2, h.H, h.Hkv, 1000, h.D, 700, dtype, cuda), chunk);
            }
}

TEST(DecodeAttentionCuda, AgreesWithTheAtenOpsAndAttendsItselfAlone) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    at::manual_seed(5);
    DecodeAttentionCase c = lota_test::make_decode_attention_case(2, 32, 8, 513, 128, 200, at::kBFloat16, cuda);
    at::Tensor k1 = c.k_cache.clone(), v1 = c.v_cache.clone(), k2 = c.k_cache.clone(), v2 = c.v_cache.clone();
    const at::Tensor fused = lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, k1, v1, c.key_mask,
                                                             c.write_pos, c.scale, {}, true);
    const at::Tensor ops = lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, k2, v2, c.key_mask,
                                                           c.write_pos, c.scale, {}, false);
    EXPECT_TRUE(at::equal(k1, k2) && at::equal(v1, v2));
    EXPECT_LE((fused.to(at::kFloat) - ops.to(at::kFloat)).abs().max().item<float>(), 0.02f);
    // Nothing else attended: the softmax is 1 at the new slot, so o is v exactly (each kv head's value for
    // its G = 4 query heads).
    c.key_mask.zero_();
    const at::Tensor alone = lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, k1, v1, c.key_mask,
                                                             c.write_pos, c.scale);
    const at::Tensor want = c.v.repeat_interleave(4, 2).reshape({2, 1, 32 * 128});
    EXPECT_TRUE(at::equal(alone, want));
}

TEST(DecodeAttentionCuda, GraphReplayFollowsTheWritePosition) {
#ifdef LOTA_WITH_CUDA
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    at::manual_seed(11);
    DecodeAttentionCase c = lota_test::make_decode_attention_case(2, 8, 2, 90, 128, 0, at::kBFloat16, cuda);
    at::Tensor kc = c.k_cache.clone(), vc = c.v_cache.clone();
    // The first call outside the capture (it makes the arrival counters).
    lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, kc, vc, c.key_mask, c.write_pos, c.scale);
    at::Tensor out;
    at::cuda::CUDAGraph graph;
    {
        const at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, cuda.index());
        const at::cuda::CUDAStreamGuard guard(side);
        graph.capture_begin();
        out = lota::kernels::decode_attention(c.q, c.k, c.v, c.cos, c.sin, kc, vc, c.key_mask, c.write_pos, c.scale);
        graph.capture_end();
    }
    for (int64_t p : {3, 0, 89, 41}) {
        c.write_pos.fill_(p);
        c.q.normal_();  // the views' storage: new values each replay
        c.k.normal_();
        c.v.normal_();
        c.k_cache = kc.clone();  // the reference's caches before this write
        c.v_cache = vc.clone();
        graph.replay();
        at::cuda::getCurrentCUDAStream().synchronize();
        const at::Tensor ref = lota_test::decode_attention_reference(c);
        EXPECT_LE((out.cpu().to(at::kDouble) - ref).abs().max().item<double>(),
                  tolerance(at::kBFloat16) * std::max(1.0, ref.abs().max().item<double>()))
            << "p " << p;
        const auto [k_want, v_want] = lota_test::decode_attention_expected_caches(c);
        EXPECT_TRUE(at::equal(kc.cpu(), k_want) && at::equal(vc.cpu(), v_want)) << "p " << p;
    }
#endif
}
