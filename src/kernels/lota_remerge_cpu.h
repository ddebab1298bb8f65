// The fused LoTA re-merge on the CPU (the CUDA kernel's counterpart, lota_remerge_cuda.h): one pass
// over a layer's packed codes instead of a dozen whole-tensor ops. Raw pointers, no torch; the caller
// (quant/lota_remerge.cpp) checks the preconditions, computes the new product P and forms the offsets.
#pragma once

#include <cstdint>

namespace lota::kernels {

/// One re-merge of a [K, N] layer (Note [merged codes and markers] in quant/lota_remerge.cpp), per weight
///   Q = Q' − [moved]·sign(P_old),  s = [P_new > t] − [P_new < −t]  (t = ⌊ω⌋),
///   Q'_new = clamp(Q + s, 0, maxq),  M = Q'_new − Q,  moved_new = [M ≠ 0].
/// qweight int32 [K·bits/32, N] (GPTQ packing), moved uint8 [K·N/8] (row-major bits, eight per byte),
/// p_new float32 [K, N] holding exact integers. P_old is read only where a flag is set: from p_old
/// float32 [K, N] when given, else (p_old == nullptr) as the int8 dot product of a_old [K, r] (the
/// previous lora_A transposed) and b_old [N, r], which is cheaper while few codes have moved. With no
/// flag set both may be null.
/// Outputs: qweight_out, moved_out (same shapes); sum_p and sum_m int32 [K/g, N], the group sums of
/// P_new and M for the offsets; counts int64 [2] = #(M = +1), #(M = −1).
/// Requires bits ∈ {2, 3, 4, 8}, N % 8 == 0, groups of whole packed words (g % (32/bits) == 0; for
/// 3 bits g % 32 == 0), contiguous groups (g_idx[k] = k/g) and |P| ≤ 2^24 (exact in float32). Runs on
/// ATen's intra-op threads, one group of rows per task.
void lota_remerge_cpu(const int32_t* qweight, const uint8_t* moved, const float* p_old, const int8_t* a_old,
                      const int8_t* b_old, int64_t r, const float* p_new, int32_t* qweight_out, uint8_t* moved_out,
                      int32_t* sum_p, int32_t* sum_m, int64_t* counts, int64_t K, int64_t N, int64_t g, int bits,
                      int t);

}  // namespace lota::kernels
