// Validation and device dispatch of a decode step's attention (see decode_attention.h).
#include "kernels/decode_attention.h"

#include <limits>

#include <ATen/ATen.h>

#include "kernels/rope.h"
#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/decode_attention_cuda.h"
#include "kernels/dequant_cuda.h"
#include "kernels/quant_gemv.h"
#endif

namespace lota::kernels {
namespace {

// [B, 1, heads, D] with the heads and their elements contiguous (any distance between the rows).
bool token_rows_ok(const at::Tensor& t, int64_t B, int64_t heads, int64_t D) {
    return t.defined() && t.dim() == 4 && t.size(0) == B && t.size(1) == 1 && t.size(2) == heads &&
           t.size(3) == D && t.stride(3) == 1 && (heads == 1 || t.stride(2) == D);
}

#ifdef LOTA_WITH_CUDA
// The one-kernel path, or an undefined tensor where it does not apply.
at::Tensor decode_attention_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                   at::Tensor& v_cache, const at::Tensor& key_mask, const at::Tensor& write_pos,
                                   double scale, int64_t chunk_keys) {
    const int64_t B = q.size(0), H = q.size(2), Hkv = k.size(2), S = k_cache.size(2), D = q.size(3);
    if (!fused_kernel_applies({q, k, v, cos, sin, k_cache, v_cache}) ||
        !decode_attention_cuda_supports(H, Hkv, D) || B * Hkv > QUANT_GEMV_MAX_TILES)
        return {};
    const c10::cuda::OptionalCUDAGuard guard(q.device());
    int* counters = quant_gemv_tile_counters();
    if (!counters) return {};
    const at::Tensor c = cos.contiguous(), s = sin.contiguous(), mask = key_mask.contiguous();
    const at::Tensor pos = write_pos.contiguous();
    at::Tensor out = at::empty({B, 1, H * D}, q.options().memory_format(at::MemoryFormat::Contiguous));
    DecodeAttentionArgs a;
    a.q = q.data_ptr();
    a.k = k.data_ptr();
    a.v = v.data_ptr();
    a.q_row = q.stride(0);
    a.k_row = k.stride(0);
    a.v_row = v.stride(0);
    a.cos = c.data_ptr();
    a.sin = s.data_ptr();
    a.k_cache = k_cache.data_ptr();
    a.v_cache = v_cache.data_ptr();
    a.key_mask = mask.data_ptr<bool>();
    a.write_pos = pos.data_ptr<int64_t>();
    a.out = out.data_ptr();
    a.B = B;
    a.H = H;
    a.Hkv = Hkv;
    a.S = S;
    a.D = D;
    a.scale = static_cast<float>(scale);
    a.t = gemv_type_of(q.scalar_type());
    decode_attention_cuda_plan(a, at::cuda::getCurrentDeviceProperties()->multiProcessorCount, chunk_keys);
    if (!decode_attention_cuda_fits(a)) return {};
    const at::Tensor partials = at::empty({decode_attention_cuda_partials(a)}, q.options().dtype(at::kFloat));
    a.partials = partials.data_ptr<float>();
    a.counters = counters;
    const int err = decode_attention_cuda_launch(a, at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "decode_attention: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
    return out;
}
#endif

}  // namespace

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                            const at::Tensor& sin, at::Tensor& k_cache, at::Tensor& v_cache,
                            const at::Tensor& key_mask, const at::Tensor& write_pos, double scale,
                            const at::Tensor& ops_mask, bool use_kernel, int64_t chunk_keys) {
    LOTA_CHECK(q.defined() && q.dim() == 4 && k_cache.defined() && k_cache.dim() == 4 && k_cache.is_contiguous() &&
                   v_cache.defined() && v_cache.sizes() == k_cache.sizes() && v_cache.is_contiguous(),
               "decode_attention: expected q [B, 1, H, D] and contiguous caches [B, Hkv, S, D], got q %s, caches %s "
               "and %s",
               q.defined() ? shape_str(q.sizes().vec()).c_str() : "undefined",
               k_cache.defined() ? shape_str(k_cache.sizes().vec()).c_str() : "undefined",
               v_cache.defined() ? shape_str(v_cache.sizes().vec()).c_str() : "undefined");
    const int64_t B = q.size(0), H = q.size(2), D = q.size(3), Hkv = k_cache.size(1), S = k_cache.size(2);
    LOTA_CHECK(token_rows_ok(q, B, H, D) && token_rows_ok(k, B, Hkv, D) && token_rows_ok(v, B, Hkv, D) &&
                   k_cache.size(0) == B && k_cache.size(3) == D && Hkv > 0 && H % Hkv == 0 && D % 2 == 0,
               "decode_attention: expected q [%lld, 1, H, %lld] and k, v [%lld, 1, %lld, %lld] (heads and elements "
               "contiguous; H a multiple of %lld) for caches %s, got q %s, k %s, v %s",
               (long long)B, (long long)D, (long long)B, (long long)Hkv, (long long)D, (long long)Hkv,
               shape_str(k_cache.sizes().vec()).c_str(), shape_str(q.sizes().vec()).c_str(),
               k.defined() ? shape_str(k.sizes().vec()).c_str() : "undefined",
               v.defined() ? shape_str(v.sizes().vec()).c_str() : "undefined");
    const auto table_ok = [&](const at::Tensor& t) {
        return t.defined() && t.dim() == 3 && t.size(0) == B && t.size(1) == 1 && t.size(2) == D;
    };
    LOTA_CHECK(table_ok(cos) && table_ok(sin), "decode_attention: cos and sin must be [%lld, 1, %lld]",
               (long long)B, (long long)D);
    LOTA_CHECK(key_mask.defined() && key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == S &&
                   key_mask.scalar_type() == at::kBool,
               "decode_attention: key_mask must be [%lld, %lld] bool", (long long)B, (long long)S);
    LOTA_CHECK(write_pos.defined() && write_pos.numel() == 1 && write_pos.scalar_type() == at::kLong,
               "decode_attention: write_pos must be one int64");
    for (const at::Tensor& t : {k, v, cos, sin, k_cache, v_cache})
        LOTA_CHECK(t.scalar_type() == q.scalar_type() && t.device() == q.device(),
                   "decode_attention: q, k, v, cos, sin and the caches must share one dtype and device");
    LOTA_CHECK(key_mask.device() == q.device() && write_pos.device() == q.device(),
               "decode_attention: key_mask and write_pos must be on q's device");
#ifdef LOTA_WITH_CUDA
    if (use_kernel) {
        at::Tensor out = decode_attention_kernel(q, k, v, cos, sin, k_cache, v_cache, key_mask, write_pos, scale,
                                                 chunk_keys);
        if (out.defined()) return out;
    }
#endif
    const at::Tensor qr = rope_rotate(q.transpose(1, 2), cos, sin);  // [B, H, 1, D]
    const at::Tensor kr = rope_rotate(k.transpose(1, 2), cos, sin);
    k_cache.index_copy_(2, write_pos.view({1}), kr);
    v_cache.index_copy_(2, write_pos.view({1}), v.transpose(1, 2));
    const at::Tensor mask = ops_mask.defined() ? ops_mask : decode_attention_mask(key_mask, write_pos, q.scalar_type());
    LOTA_CHECK(mask.dim() == 4 && mask.size(0) == B && mask.size(3) == S,
               "decode_attention: ops_mask must be [%lld, 1, 1, %lld], got %s", (long long)B, (long long)S,
               shape_str(mask.sizes().vec()).c_str());
    const at::Tensor o = at::scaled_dot_product_attention(qr, k_cache, v_cache, mask, 0.0, false, scale,
                                                          /*enable_gqa=*/H != Hkv);
    return o.transpose(1, 2).reshape({B, 1, H * D});
}

at::Tensor decode_attention_mask(const at::Tensor& key_mask, const at::Tensor& write_pos, at::ScalarType dtype) {
    const int64_t B = key_mask.size(0), S = key_mask.size(1);
    const at::Tensor slots = at::arange(S, write_pos.options());
    const at::Tensor allowed = key_mask.view({B, 1, 1, S}).logical_or(slots.eq(write_pos).view({1, 1, 1, S}));
    return at::zeros(allowed.sizes(), key_mask.options().dtype(dtype))
        .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

}  // namespace lota::kernels
