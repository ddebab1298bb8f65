// Launcher of the fused LoTA re-merge kernel (lota_remerge_cuda.cu); raw pointers, no torch. The
// caller (quant/lota_remerge.cpp) checks the preconditions and computes the two products P.
#pragma once

#include <cstdint>

namespace lota::kernels {

/// One pass over a layer's packed codes for the per-step re-merge (Note [merged codes and markers]
/// in quant/lota_remerge.cpp). For every weight (k, n) of the [K, N] layer:
///   Q  = Q' − [moved]·sign(P_old)            (P_old == nullptr: no adapter merged yet, Q = Q')
///   s  = +1 if P_new > t, −1 if P_new < −t, else 0           (t = ⌊ω⌋, P exact integers)
///   Q'_new = clamp(Q + s, 0, maxq), M = Q'_new − Q,  moved_new = [M ≠ 0]
/// and per (group j, column n): F = (ΣP_new − ω·ΣM) / (g·ω) rounded as lota_offset_from_sums does.
///
/// qweight int32 [K·bits/32, N] (GPTQ packing), moved uint8 [K·N/8] (row-major bits, eight per
/// byte), p_old / p_new float16 bits [K, N] row-major. Outputs: qweight_out, moved_out (same shapes),
/// offset float [K/g, N], counts uint64 [2] += #(M = +1), #(M = −1) (the caller zeroes them).
/// Requires bits ∈ {2, 3, 4, 8}, N % 8 == 0, g % remerge_tile_rows(bits) == 0 (32/bits; 32 for 3 bits)
/// and contiguous groups (g_idx[k] = k/g).
/// Returns the cudaError_t of the launch (0 = ok).
int lota_remerge_cuda_launch(const int32_t* qweight, const uint8_t* moved, const uint16_t* p_old,
                             const uint16_t* p_new, int32_t* qweight_out, uint8_t* moved_out, float* offset,
                             unsigned long long* counts, int64_t K, int64_t N, int64_t g, int bits, int t,
                             double omega, void* stream);

}  // namespace lota::kernels
