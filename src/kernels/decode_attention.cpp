// Validation and device dispatch of the decode-step attention (see decode_attention.h).
#include "kernels/decode_attention.h"

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "kernels/decode_attention_cuda.h"  // plain C++: the kernel's shape limits
#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/quant_gemv.h"
#endif

namespace lota::kernels {
namespace {

std::string shape_of(const at::Tensor& t) { return t.defined() ? shape_str(t.sizes().vec()) : "undefined"; }

void check_args(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                const at::Tensor& key_mask, const at::Tensor& write_pos) {
    LOTA_CHECK(q.defined() && q.dim() == 3 && q.size(1) > 0 && q.size(2) > 0 && (q.stride(2) == 1 || q.size(2) == 1),
               "decode_attention: q must be [B, H, D] with H, D > 0 and stride(2) == 1, got %s with strides %s",
               shape_of(q).c_str(), q.defined() ? shape_str(q.strides().vec()).c_str() : "undefined");
    const int64_t B = q.size(0), H = q.size(1), D = q.size(2);
    LOTA_CHECK(k_cache.defined() && k_cache.dim() == 4 && k_cache.size(0) == B && k_cache.size(1) > 0 &&
                   k_cache.size(2) > 0 && k_cache.size(3) == D,
               "decode_attention: k_cache must be [%lld, Hkv, S, %lld] with Hkv, S > 0 for q of shape %s, got %s",
               (long long)B, (long long)D, shape_of(q).c_str(), shape_of(k_cache).c_str());
    const int64_t Hkv = k_cache.size(1), S = k_cache.size(2);
    LOTA_CHECK(v_cache.defined() && v_cache.sizes() == k_cache.sizes(),
               "decode_attention: v_cache has shape %s, expected %s (the shape of k_cache)", shape_of(v_cache).c_str(),
               shape_of(k_cache).c_str());
    LOTA_CHECK(H % Hkv == 0, "decode_attention: %lld query heads are not a multiple of %lld kv heads", (long long)H,
               (long long)Hkv);
    LOTA_CHECK(key_mask.defined() && key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == S,
               "decode_attention: key_mask has shape %s, expected [%lld, %lld]", shape_of(key_mask).c_str(),
               (long long)B, (long long)S);
    LOTA_CHECK(write_pos.defined() && write_pos.dim() == 1 && write_pos.size(0) == 1,
               "decode_attention: write_pos has shape %s, expected [1]", shape_of(write_pos).c_str());
    const at::ScalarType dt = q.scalar_type();
    LOTA_CHECK(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16,
               "decode_attention: q has dtype %s, expected float32, float16 or bfloat16", c10::toString(dt));
    LOTA_CHECK(k_cache.scalar_type() == dt && v_cache.scalar_type() == dt,
               "decode_attention: k_cache and v_cache have dtypes %s and %s, expected %s (the dtype of q)",
               c10::toString(k_cache.scalar_type()), c10::toString(v_cache.scalar_type()), c10::toString(dt));
    LOTA_CHECK(key_mask.scalar_type() == at::kBool, "decode_attention: key_mask has dtype %s, expected bool",
               c10::toString(key_mask.scalar_type()));
    LOTA_CHECK(write_pos.scalar_type() == at::kLong, "decode_attention: write_pos has dtype %s, expected int64",
               c10::toString(write_pos.scalar_type()));
    const auto check_device = [&](const at::Tensor& t, const char* name) {
        LOTA_CHECK(t.device() == q.device(), "decode_attention: %s is on %s, expected %s (the device of q)", name,
                   t.device().str().c_str(), q.device().str().c_str());
    };
    check_device(k_cache, "k_cache");
    check_device(v_cache, "v_cache");
    check_device(key_mask, "key_mask");
    check_device(write_pos, "write_pos");
    LOTA_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous() && key_mask.is_contiguous(),
               "decode_attention: k_cache, v_cache and key_mask must be contiguous");
}

}  // namespace

bool decode_attention_cuda_supports(int64_t H, int64_t Hkv, int64_t D) {
    return H > 0 && Hkv > 0 && H % Hkv == 0 && H / Hkv <= kDecodeAttentionMaxGroup &&
           decode_attention_cuda_head_dim_ok(D);
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                            const at::Tensor& key_mask, const at::Tensor& write_pos, double scale) {
    check_args(q, k_cache, v_cache, key_mask, write_pos);
    const int64_t B = q.size(0), H = q.size(1), D = q.size(2), S = k_cache.size(2);
    const at::Device dev = q.device();
    at::Tensor o = at::empty({B, H, D}, q.options().memory_format(at::MemoryFormat::Contiguous));
    if (dev.is_cpu()) {
        const int64_t p = write_pos.item<int64_t>();
        LOTA_CHECK(p >= 0 && p < S, "decode_attention: write_pos is %lld, expected a slot in [0, %lld)", (long long)p,
                   (long long)S);
        if (B > 0) decode_attention_cpu(q, k_cache, v_cache, key_mask, p, scale, o);
        return o;
    }
#ifdef LOTA_WITH_CUDA
    LOTA_CHECK(dev.is_cuda(), "decode_attention: unsupported device %s", dev.str().c_str());
    const int64_t Hkv = k_cache.size(1);
    LOTA_CHECK(decode_attention_cuda_supports(H, Hkv, D),
               "decode_attention: the CUDA kernel takes head size 64 or 128 and at most %lld query heads per kv head, "
               "got D = %lld, H = %lld, Hkv = %lld (use another attention for this model)",
               (long long)kDecodeAttentionMaxGroup, (long long)D, (long long)H, (long long)Hkv);
    // Vector loads of K and V rows (a cache from at::empty/zeros always is aligned).
    LOTA_CHECK(reinterpret_cast<uintptr_t>(k_cache.data_ptr()) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(v_cache.data_ptr()) % 16 == 0,
               "decode_attention: k_cache and v_cache must start at 16-byte aligned addresses");
    if (B == 0) return o;
    const c10::cuda::OptionalCUDAGuard guard(dev);
    DecodeAttentionArgs a;
    a.q = q.data_ptr();
    a.q_stride_b = q.stride(0);
    a.q_stride_h = q.stride(1);
    a.k = k_cache.data_ptr();
    a.v = v_cache.data_ptr();
    a.key_mask = key_mask.data_ptr<bool>();
    a.write_pos = write_pos.data_ptr<int64_t>();
    a.out = o.data_ptr();
    a.B = B, a.H = H, a.Hkv = Hkv, a.S = S, a.D = D;
    a.scale = static_cast<float>(scale);
    a.t = gemv_type_of(q.scalar_type());
    decode_attention_cuda_plan(a, at::cuda::getCurrentDeviceProperties()->multiProcessorCount);
    at::Tensor partial;  // the slot ranges' (m, l, acc); from the graph's pool while capturing
    if (const int64_t n = decode_attention_cuda_partial_floats(a); n > 0) {
        partial = at::empty({n}, q.options().dtype(at::kFloat));
        a.partial = partial.data_ptr<float>();
    }
    const int err = decode_attention_cuda_launch(a, at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "decode_attention: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
    return o;
#else
    LOTA_FAIL("decode_attention: tensors are on %s, but this build of lota has no CUDA support", dev.str().c_str());
#endif
}

}  // namespace lota::kernels
