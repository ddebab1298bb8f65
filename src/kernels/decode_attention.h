// Attention of a decode step: one new token per sequence against a preallocated KV cache. Reads only the
// filled slots [0, p], p = write_pos, which the CUDA kernel reads on the device (so a captured CUDA graph
// replays it as p advances), and serves the H/Hkv query heads of a group from one read of their kv head.
// Not for prefill (several new tokens), dropout or autograd. CPU twin: decode_attention_cpu.cpp (plain
// loops, the spec); CUDA: decode_attention_cuda.cu (flash-decoding).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// Decode attention of one new token per sequence over a KV cache.
/// q [B, H, D] (any strides for dims 0 and 1, stride(2) == 1), k_cache, v_cache [B, Hkv, S, D] contiguous,
/// key_mask [B, S] bool contiguous, write_pos [1] int64 on q's device (the slot of the new token).
/// For each b, h: keys s in [0, p] with p = write_pos[0] that satisfy key_mask[b][s] || s == p (the new
/// token always attends to itself); kv head = h / (H / Hkv). o[b][h] = Σ softmax_s(scale · q·k_s) v_s.
/// Returns o [B, H, D] contiguous, q's dtype (float32, float16 or bfloat16, shared by k and v); float32
/// accumulation, one rounding at the end. On CUDA needs decode_attention_cuda_supports(H, Hkv, D), and p in
/// [0, S) is the caller's promise (the kernel clamps it); on the CPU p is read and checked. Throws lota::Error.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                            const at::Tensor& key_mask, const at::Tensor& write_pos, double scale);

/// Whether the CUDA kernel takes these shapes: D in {64, 128} and at most 8 query heads per kv head
/// (H % Hkv == 0). A caller checks this and uses another attention otherwise.
bool decode_attention_cuda_supports(int64_t H, int64_t Hkv, int64_t D);

/// The CPU loops behind decode_attention; arguments validated and 0 <= p < S. Writes o [B, H, D]
/// (contiguous, q's dtype).
void decode_attention_cpu(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const at::Tensor& key_mask, int64_t p, double scale, at::Tensor& o);

}  // namespace lota::kernels
