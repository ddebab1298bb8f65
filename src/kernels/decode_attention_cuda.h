// Launcher of the decode-step attention kernel (decode_attention_cuda.cu); raw pointers, no torch and
// no CUDA headers (see decode_attention.h for the op and its checks, which are the caller's job).
#pragma once

#include <cstdint>

#include "kernels/quant_gemv_cuda.h"  // GemvType: float32, float16, bfloat16

namespace lota::kernels {

/// The head sizes the kernel is built for, and the most query heads one kv head may serve.
constexpr int64_t kDecodeAttentionMaxGroup = 8;
inline bool decode_attention_cuda_head_dim_ok(int64_t D) { return D == 64 || D == 128; }

struct DecodeAttentionArgs {
    const void* q = nullptr;  ///< [B, H, D] of type t, element (b, h, d) at b·q_stride_b + h·q_stride_h + d
    int64_t q_stride_b = 0, q_stride_h = 0;
    const void* k = nullptr;  ///< [B, Hkv, S, D] of type t, contiguous, 16-byte aligned
    const void* v = nullptr;  ///< as k
    const bool* key_mask = nullptr;   ///< [B, S], contiguous
    const int64_t* write_pos = nullptr;  ///< [1] on the device: p, the new token's slot (clamped to [0, S))
    void* out = nullptr;  ///< [B, H, D] of type t, contiguous
    float* partial = nullptr;  ///< decode_attention_cuda_partial_floats(args) floats of scratch when splits > 1
    int64_t B = 0, H = 0, Hkv = 0, S = 0, D = 0;
    float scale = 1.0f;
    GemvType t = GemvType::F32;
    int splits = 1;  ///< set by decode_attention_cuda_plan: slot ranges per (b, kv head)
};

/// Sets a.splits from the shapes and the device's SM count alone (never from p, so a captured launch stays
/// valid as p advances). All shape fields must be set.
void decode_attention_cuda_plan(DecodeAttentionArgs& a, int sm_count);

/// Floats of scratch the launch needs in a.partial (0 when a.splits == 1).
int64_t decode_attention_cuda_partial_floats(const DecodeAttentionArgs& a);

/// Launches the attention kernel (and, when a.splits > 1, the kernel that merges the slot ranges) on
/// `stream` (a cudaStream_t). Needs D in {64, 128} and H / Hkv <= kDecodeAttentionMaxGroup. Returns the
/// cudaError_t of the launches as int (0 = ok).
int decode_attention_cuda_launch(const DecodeAttentionArgs& a, void* stream);

}  // namespace lota::kernels
