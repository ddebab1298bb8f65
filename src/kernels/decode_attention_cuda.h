// Launcher of the decode-attention kernel (decode_attention_cuda.cu); raw pointers, no torch (see
// decode_attention.h for what it computes).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType

namespace lota::kernels {

struct DecodeAttentionArgs {
    // The new token's q [B, H·D], k and v [B, Hkv·D] before the rotation: row b of each at ptr + b·row
    // (elements), its heads contiguous.
    const void* q;
    const void* k;
    const void* v;
    int64_t q_row, k_row, v_row;
    const void* cos;  // [B, D], contiguous
    const void* sin;
    void* k_cache;  // [B, Hkv, S, D], contiguous
    void* v_cache;
    const bool* key_mask;      // [B, S], contiguous
    const int64_t* write_pos;  // [1], on the device
    void* out;                 // [B, H·D], contiguous
    int64_t B, H, Hkv, S, D;
    float scale;
    GemvType t;
    // The plan (decode_attention_cuda_plan): the slots are cut into `chunks` ranges of `chunk_keys`, one
    // block per (row, kv head, range); the last block of a (row, kv head) to finish adds the ranges (with
    // one range the block writes the output).
    int64_t chunks = 0, chunk_keys = 0;
    float* partials = nullptr;  // decode_attention_cuda_partials(args) floats of scratch
    int* counters = nullptr;    // B·Hkv zeroed ints, left at zero (quant_gemv_tile_counters)
};

/// Whether the kernel takes this shape: D of 64, 128 or 256 and up to 8 query heads per kv head.
bool decode_attention_cuda_supports(int64_t H, int64_t Hkv, int64_t D);

/// Sets chunks and chunk_keys: about one block per SM, ranges of 64 to 256 slots; or, with chunk_keys > 0,
/// ranges of that many slots (rounded up to a multiple of 32 in [32, 256]), for measurements.
void decode_attention_cuda_plan(DecodeAttentionArgs& a, int sm_count, int64_t chunk_keys = 0);

/// Whether the planned launch's shared scratch fits (it does below about 260k slots).
bool decode_attention_cuda_fits(const DecodeAttentionArgs& a);

/// Floats of scratch the planned launch needs.
int64_t decode_attention_cuda_partials(const DecodeAttentionArgs& a);

/// Launches the planned kernel on `stream`; returns the cudaError_t as int (0 = ok).
int decode_attention_cuda_launch(const DecodeAttentionArgs& a, void* stream);

}  // namespace lota::kernels
