// Key/value cache for incremental decoding: per layer, preallocated [B, Hkv, capacity, D]
// buffers plus the key padding mask of everything cached so far. The write position is kept on
// the device as well as on the host, so a decode step reads nothing back (CUDA graphs).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::model {

struct KVCache {
    std::vector<at::Tensor> k, v;  ///< per layer [B, Hkv, capacity, D]
    at::Tensor key_mask;           ///< [B, capacity] bool: key slot holds a real token
    int64_t length = 0;            ///< number of cached positions
    at::Tensor next_positions;     ///< [B] int64: RoPE position of each sequence's next token
    at::Tensor write_pos;          ///< [1] int64 on the device: == length, read by decode steps
    at::Tensor slots;              ///< [capacity] int64: 0 .. capacity − 1
    int64_t capacity() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

}  // namespace lota::model
