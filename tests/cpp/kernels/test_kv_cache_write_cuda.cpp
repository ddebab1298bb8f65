// The KV-cache write (kernels/kv_cache_write.h) on CUDA: against index_copy_ (its CPU twin) on fresh
// random caches and strided k/v views of every float dtype, at the first, a middle and the last slot;
// a slot outside the cache writes nothing; captured in a CUDA graph, replays follow the write position
// on the device.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/types.h>

#ifdef LOTA_WITH_CUDA  // the CUDA headers exist only in a CUDA build of LibTorch
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "kernels/kv_cache_write.h"
#include "util/check.h"

namespace {

struct Case {
    at::Tensor k_cache, v_cache, k, v;
};

// Caches [B, Hkv, S, D] of random values; k and v as the model makes them: views of one fused output.
Case make_case(int64_t B, int64_t Hkv, int64_t S, int64_t D, at::ScalarType dtype, const at::Device& dev) {
    const at::TensorOptions o = at::TensorOptions().dtype(dtype).device(dev);
    Case c;
    c.k_cache = at::randn({B, Hkv, S, D}, o);
    c.v_cache = at::randn({B, Hkv, S, D}, o);
    const at::Tensor y = at::randn({B, 1, 3 * Hkv * D}, o);  // [q-like | k | v] side by side
    c.k = y.narrow(-1, Hkv * D, Hkv * D).view({B, 1, Hkv, D}).transpose(1, 2);
    c.v = y.narrow(-1, 2 * Hkv * D, Hkv * D).view({B, 1, Hkv, D}).transpose(1, 2);
    return c;
}

}  // namespace

TEST(KvCacheWriteCuda, MatchesIndexCopy) {
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    for (auto dtype : {at::kBFloat16, at::kHalf, at::kFloat})
        for (int64_t S : {1, 7, 300})
            for (int64_t p : {int64_t(0), S / 2, S - 1}) {
                at::manual_seed(S * 7 + p + static_cast<int>(dtype));
                Case c = make_case(3, 2, S, 64, dtype, cuda);
                at::Tensor k_ref = c.k_cache.clone(), v_ref = c.v_cache.clone();
                const at::Tensor pos = at::full({1}, p, at::TensorOptions().dtype(at::kLong).device(cuda));
                k_ref.index_copy_(2, pos, c.k);
                v_ref.index_copy_(2, pos, c.v);
                lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k, c.v, pos);
                EXPECT_TRUE(at::equal(c.k_cache, k_ref)) << dtype << " S " << S << " p " << p;
                EXPECT_TRUE(at::equal(c.v_cache, v_ref)) << dtype << " S " << S << " p " << p;
            }
    // Outside the cache: nothing written.
    Case c = make_case(2, 2, 5, 32, at::kBFloat16, cuda);
    const at::Tensor k0 = c.k_cache.clone(), v0 = c.v_cache.clone();
    for (int64_t p : {-1, 5}) {
        lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k, c.v, at::full({1}, p, at::TensorOptions().dtype(at::kLong).device(cuda)));
        EXPECT_TRUE(at::equal(c.k_cache, k0) && at::equal(c.v_cache, v0)) << "p " << p;
    }
    const at::Tensor pos = at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(cuda));
    EXPECT_THROW(lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k.to(at::kHalf), c.v, pos), lota::Error);
    EXPECT_THROW(lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k.narrow(3, 0, 16), c.v, pos), lota::Error);
    EXPECT_THROW(lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k, c.v, pos.cpu()), lota::Error);
    EXPECT_THROW(lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k, c.v, pos.to(at::kInt)), lota::Error);
}

TEST(KvCacheWriteCuda, GraphReplayFollowsTheWritePosition) {
#ifdef LOTA_WITH_CUDA
    const at::Device cuda(at::kCUDA);
    const torch::NoGradGuard no_grad;
    at::manual_seed(11);
    Case c = make_case(2, 4, 16, 128, at::kBFloat16, cuda);
    at::Tensor k_ref = c.k_cache.clone(), v_ref = c.v_cache.clone();
    const at::Tensor pos = at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(cuda));
    at::cuda::CUDAGraph graph;
    {
        const at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, cuda.index());
        const at::cuda::CUDAStreamGuard guard(side);
        graph.capture_begin();
        lota::kernels::kv_cache_write(c.k_cache, c.v_cache, c.k, c.v, pos);
        graph.capture_end();
    }
    for (int64_t p : {3, 0, 15}) {
        pos.fill_(p);
        c.k.normal_();  // the views' storage: new values each replay
        c.v.normal_();
        k_ref.narrow(2, p, 1).copy_(c.k);
        v_ref.narrow(2, p, 1).copy_(c.v);
        graph.replay();
        at::cuda::getCurrentCUDAStream().synchronize();
        EXPECT_TRUE(at::equal(c.k_cache, k_ref)) << "p " << p;
        EXPECT_TRUE(at::equal(c.v_cache, v_ref)) << "p " << p;
    }
#endif
}
