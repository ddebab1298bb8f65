// Launcher of the KV-cache write kernel (kv_cache_write_cuda.cu); raw pointers, no torch (see kv_cache_write.h).
#pragma once

#include <cstdint>

namespace lota::kernels {

/// One source: elements of `bytes` (2 or 4) at src + b·stride[0] + h·stride[1] + d·stride[2] (in elements)
/// for b < B, h < H, d < D; copied to cache[((b·H + h)·S + write_pos[0])·D + d].
struct KvSource {
    const void* src;
    int64_t stride[3];
    void* cache;
};

/// Writes k and v (same B, H, S, D and element size) in one launch; returns the cudaError_t (0 = ok).
int kv_cache_write_cuda_launch(const KvSource& k, const KvSource& v, const int64_t* write_pos, int64_t B, int64_t H,
                               int64_t S, int64_t D, int bytes, void* stream);

}  // namespace lota::kernels
