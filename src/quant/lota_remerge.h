// The fast re-merge (DESIGN §1, "the key performance fact"): whenever a layer's adapter changed
// (once per optimizer step in training) it gets new merged codes Q' = Q + M and offsets F from its
// previous merged codes, on the layer's device and without host synchronisation. A layer keeps one
// set of packed codes, see Note [merged codes and markers] in lota_remerge.cpp. Not here: the
// validated, one-off merge that `lota merge` writes (lota_merge.h; this file gives the same codes
// and offsets bit for bit, Note [merge entry points] in lota.h).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "quant/lota.h"
#include "quant/quantized_weight.h"

namespace lota::quant {

/// What an adapted layer keeps between re-merges.
struct LotaMergedCodes {
    at::Tensor qweight;  ///< int32 [K·b/32, N]: Q' = Q + M, packed like the base layer (what forward runs)
    at::Tensor moved;    ///< uint8 [⌈K·N/8⌉]: [M ≠ 0], eight per byte, [K, N] in row-major order
    at::Tensor a_t, b_t; ///< int8 copies of the adapter that made Q' (M's signs); undefined while M = 0
};

/// Step 0 (no adapter merged yet): Q' = Q, sharing base.qweight (no copy), and M = 0.
LotaMergedCodes lota_merged_codes_init(const QuantizedWeight& base);

/// A uint8 [K, N] of 0/1 to the 1-bit form of LotaMergedCodes::moved, and back.
at::Tensor lota_moved_pack(const at::Tensor& bits);
at::Tensor lota_moved_unpack(const at::Tensor& packed, int64_t K, int64_t N);

/// One layer's re-merge.
struct LotaRemerged {
    LotaMergedCodes codes;
    at::Tensor offset;  ///< F, float32 [G, N]
    at::Tensor stats;   ///< float64 [3] on the layer's device: #(M = +1), #(M = −1), Σ|F|
};

/// Re-merges `codes` for the adapter a_t int8 [r, K], b_t int8 [N, r] with threshold omega: the base
/// codes Q = Q' − M (M from `moved` and the previous adapter), then M, F (DESIGN §1) of the new
/// adapter and Q'_new = Q + M. The result keeps copies of a_t and b_t. `layer` gives the
/// shape, bits and g_idx (its qweight and offset are not used); `groups` = lota_groups_make(g_idx, G).
/// No host sync on CUDA for 2/3/4/8-bit codes with contiguous groups and N % 8 == 0: one fused kernel
/// (kernels/lota_remerge_cuda.h) after the two exact products; on the CPU likewise
/// kernels/lota_remerge_cpu.h; otherwise lota_remerge_ops. All give the same codes, flags and offsets.
/// Throws lota::Error on shape mismatches.
LotaRemerged lota_remerge(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                          const at::Tensor& a_t, const at::Tensor& b_t, double omega);

/// The same re-merge as whole-tensor ATen ops on any device: the CPU path and the fused kernel's twin.
LotaRemerged lota_remerge_ops(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                              const at::Tensor& a_t, const at::Tensor& b_t, double omega);

}  // namespace lota::quant
