// Validation and device dispatch of the KV-cache write (see kv_cache_write.h).
#include "kernels/kv_cache_write.h"

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/kv_cache_write_cuda.h"
#endif

namespace lota::kernels {

void kv_cache_write(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& write_pos) {
    const auto fits = [&](const at::Tensor& t, const at::Tensor& cache) {
        return t.defined() && cache.defined() && cache.dim() == 4 && t.dim() == 4 && cache.is_contiguous() &&
               t.size(0) == cache.size(0) && t.size(1) == cache.size(1) && t.size(2) == 1 &&
               t.size(3) == cache.size(3) && t.scalar_type() == cache.scalar_type() && t.device() == cache.device();
    };
    LOTA_CHECK(fits(k, k_cache) && fits(v, v_cache) && k_cache.sizes() == v_cache.sizes(),
               "kv_cache_write: expected k, v [B, Hkv, 1, D] for contiguous caches [B, Hkv, S, D] of their dtype "
               "and device, got k %s, v %s, caches %s and %s",
               k.defined() ? shape_str(k.sizes().vec()).c_str() : "undefined",
               v.defined() ? shape_str(v.sizes().vec()).c_str() : "undefined",
               k_cache.defined() ? shape_str(k_cache.sizes().vec()).c_str() : "undefined",
               v_cache.defined() ? shape_str(v_cache.sizes().vec()).c_str() : "undefined");
    LOTA_CHECK(write_pos.defined() && write_pos.numel() == 1 && write_pos.scalar_type() == at::kLong &&
                   write_pos.device() == k_cache.device(),
               "kv_cache_write: write_pos must be one int64 on the caches' device");
#ifdef LOTA_WITH_CUDA
    const int64_t bytes = k.element_size();
    if (k_cache.is_cuda() && (bytes == 2 || bytes == 4)) {
        const c10::cuda::OptionalCUDAGuard guard(k_cache.device());
        const at::Tensor pos = write_pos.contiguous();
        const KvSource ks{k.data_ptr(), {k.stride(0), k.stride(1), k.stride(3)}, k_cache.data_ptr()};
        const KvSource vs{v.data_ptr(), {v.stride(0), v.stride(1), v.stride(3)}, v_cache.data_ptr()};
        const int err = kv_cache_write_cuda_launch(ks, vs, pos.data_ptr<int64_t>(), k_cache.size(0), k_cache.size(1),
                                                   k_cache.size(2), k_cache.size(3), static_cast<int>(bytes),
                                                   at::cuda::getCurrentCUDAStream().stream());
        LOTA_CHECK(err == 0, "kv_cache_write: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
        return;
    }
#endif
    k_cache.index_copy_(2, write_pos.view({1}), k);
    v_cache.index_copy_(2, write_pos.view({1}), v);
}

}  // namespace lota::kernels
