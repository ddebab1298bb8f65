// A decode step's write of the new keys and values into the KV cache at the write position, which lives
// on the device (so the step can be replayed as a CUDA graph): k_cache[:, :, p] = k and
// v_cache[:, :, p] = v with p = write_pos[0]. The CPU path is two index_copy_ calls; on CUDA one kernel
// does both (two index_copy launches per layer were a visible part of a batch-1 decode step).
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// k_cache, v_cache [B, Hkv, S, D] contiguous; k, v [B, Hkv, 1, D] of their dtype (any strides, e.g.
/// views of a fused q/k/v output); write_pos [1] int64 on the caches' device. On CUDA a position outside
/// [0, S) writes nothing (the CPU path throws). Throws lota::Error on a shape, dtype or device mismatch.
void kv_cache_write(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& write_pos);

}  // namespace lota::kernels
