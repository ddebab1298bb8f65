// A decode step's attention for one layer, from the new token's q, k and v to the attention output:
//   q' = rope(q), k' = rope(k)                         (rope.h's formula, rounded to the dtype)
//   k_cache[:, :, p] = k', v_cache[:, :, p] = v         (p = write_pos[0], read on the device)
//   o[b, h] = Σ_j softmax_j(scale · q'[b, h]·k_cache[b, h / G, j]) · v_cache[b, h / G, j]
// over the slots j with key_mask[b, j] or j == p (G = H / Hkv query heads share a kv head, as HF's
// repeat_kv). On CUDA one kernel does it all (decode_attention_cuda.cu) for head sizes 64, 128 and 256
// and up to 8 query heads per kv head; otherwise (or with use_kernel off) rope_rotate, index_copy_ and
// scaled_dot_product_attention do it, each with its own launches, with the additive mask of
// decode_attention_mask (built once a step by the caller, or here when not given).
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// q [B, 1, H, D], k and v [B, 1, Hkv, D] (any row stride, heads and elements contiguous: views of a fused
/// q/k/v output do); cos, sin [B, 1, D]; caches [B, Hkv, S, D] contiguous; key_mask [B, S] bool; write_pos
/// [1] int64 in [0, S); all of q's dtype (f32, f16 or bf16) and device. Returns o [B, 1, H·D]. Throws
/// lota::Error on a shape, dtype or device mismatch. ops_mask: decode_attention_mask(key_mask, write_pos,
/// dtype) for the ATen-op path, or undefined to build it here. chunk_keys > 0: the kernel's ranges of slots
/// (decode_attention_cuda_plan; 0 = its plan's choice), for measurements.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                            const at::Tensor& sin, at::Tensor& k_cache, at::Tensor& v_cache,
                            const at::Tensor& key_mask, const at::Tensor& write_pos, double scale,
                            const at::Tensor& ops_mask = {}, bool use_kernel = true, int64_t chunk_keys = 0);

/// The additive mask [B, 1, 1, S] of the slots a decode step attends (0 where key_mask or the slot is
/// write_pos, −inf elsewhere), in dtype: what the ATen-op path adds to its scores.
at::Tensor decode_attention_mask(const at::Tensor& key_mask, const at::Tensor& write_pos, at::ScalarType dtype);

}  // namespace lota::kernels
