// The per-step re-merge (see lota_remerge.h). Byte-sized tensor ops only; no .item(), no range
// checks that read back (the masks keep every code on the grid by construction).
//
// Note [merged codes and markers]
// The forward of a training step runs the merged codes Q' = Q + M (packed, b bits a weight). To
// re-merge after the optimizer step the base codes Q are needed as well: both the grid-edge masks and
// the new Q' depend on them. Keeping Q next to Q' would double the packed codes (the largest tensor
// of a quantized model). Q cannot be recovered from Q' and the old adapter alone (where P > ω and
// Q' = maxq, Q may be maxq − 1 with M = +1 or maxq with the marker masked), so we keep M itself, at
// 2 bits a weight: Q = Q' − M exactly, for 1.5× the bytes of one set of b = 4 codes instead of 2×.
//
// The arithmetic is done in uint8. Q = Q' + 1 − (M + 1) and M + 1 = Q'_new + 1 − Q may pass through
// 256 for 8-bit codes (Q' = 255); uint8 arithmetic wraps modulo 256 and the final values lie in
// [0, 255], so they are exact.
#include "quant/lota_remerge.h"

#include <cmath>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::quant {

LotaMergedCodes lota_merged_codes_init(const QuantizedWeight& base) {
    const int64_t n = base.in_features * base.out_features;
    LotaMergedCodes c;
    c.qweight = base.qweight;
    c.markers = lota_markers_pack(at::ones({n}, base.qweight.options().dtype(at::kByte)));
    return c;
}

at::Tensor lota_markers_pack(const at::Tensor& marker_codes) {
    LOTA_CHECK(marker_codes.defined() && marker_codes.scalar_type() == at::kByte,
               "LoTA: marker codes must be uint8 (M + 1)");
    const int64_t n = marker_codes.numel(), n4 = (n + 3) / 4;
    at::Tensor flat = marker_codes.reshape({-1});
    if (n4 * 4 != n) flat = at::cat({flat, at::ones({n4 * 4 - n}, flat.options())});  // padding: M = 0
    const at::Tensor v = flat.view({n4, 4});
    at::Tensor out = v.select(1, 0).clone(at::MemoryFormat::Contiguous);
    for (int64_t j = 1; j < 4; ++j) out.bitwise_or_(v.select(1, j).bitwise_left_shift(2 * j));
    return out;
}

at::Tensor lota_markers_unpack(const at::Tensor& packed, int64_t K, int64_t N) {
    const int64_t n4 = (K * N + 3) / 4;
    LOTA_CHECK(packed.defined() && packed.dim() == 1 && packed.size(0) == n4 && packed.scalar_type() == at::kByte,
               "LoTA: packed markers must be uint8 [%lld] for a [%lld, %lld] layer", static_cast<long long>(n4),
               static_cast<long long>(K), static_cast<long long>(N));
    at::Tensor out = at::empty({n4, 4}, packed.options());
    for (int64_t j = 0; j < 4; ++j) {
        at::Tensor dst = out.select(1, j);
        if (j == 3)
            dst.copy_(packed.bitwise_right_shift(6));
        else
            at::bitwise_and_out(dst, j == 0 ? packed : packed.bitwise_right_shift(2 * j), 3);
    }
    return out.view({-1}).narrow(0, 0, K * N).view({K, N});
}

LotaRemerged lota_remerge(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                          const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    const int64_t K = layer.in_features, N = layer.out_features, maxq = layer.maxq();
    LOTA_CHECK(a_t.defined() && b_t.defined() && a_t.dim() == 2 && b_t.dim() == 2 && a_t.size(1) == K &&
                   b_t.size(0) == N,
               "LoTA re-merge: adapter lora_A.weight %s / lora_B.weight %s does not fit in=%lld, out=%lld",
               a_t.defined() ? shape_str(a_t.sizes().vec()).c_str() : "(undefined)",
               b_t.defined() ? shape_str(b_t.sizes().vec()).c_str() : "(undefined)", static_cast<long long>(K),
               static_cast<long long>(N));
    LOTA_CHECK(groups.n_groups * groups.rows == K && groups.n_groups == layer.n_groups(),
               "LoTA re-merge: the row grouping (%lld groups of %lld) does not fit the layer (K = %lld, G = %lld)",
               static_cast<long long>(groups.n_groups), static_cast<long long>(groups.rows), static_cast<long long>(K),
               static_cast<long long>(layer.n_groups()));
    LOTA_CHECK(std::isfinite(omega) && omega > 0, "LoTA: threshold omega must be finite and > 0, got %g", omega);
    QuantizedWeight current = layer;
    current.qweight = codes.qweight;
    // Q = Q' − M (Note [merged codes and markers]).
    const at::Tensor q = unpack_codes(current).add(1).sub_(lota_markers_unpack(codes.markers, K, N));

    // s + 1 = [P > ω] + [P ≥ −ω] ∈ {0, 1, 2}: s = +1 where P > ω, −1 where P < −ω. P holds exact
    // integers, so comparing with ⌊ω⌋ is exact (as in lota_markers).
    const at::Tensor p = lota_delta_w_float(a_t, b_t);
    const double t = std::floor(omega);
    at::Tensor s1 = p.gt(t).to(at::kByte);
    s1.add_(p.ge(-t));
    // Q'_new = clamp(Q + s, 0, maxq): +1 only where Q < maxq, −1 only where Q > 0, i.e. Q + M with
    // DESIGN §1's masked markers. Q + s + 1 ≤ maxq + 2 fits uint8 below 8 bits.
    at::Tensor q_new = layer.bits < 8 ? q.add(s1) : q.to(at::kShort).add_(s1);
    q_new.clamp_(1, maxq + 1).sub_(1);
    if (layer.bits == 8) q_new = q_new.to(at::kByte);
    const at::Tensor m1 = q_new.add(1).sub_(q);  // M + 1

    LotaRemerged out;
    const at::Tensor sum_m = lota_group_sum(m1, groups, at::kLong).sub_(groups.rows);  // Σ(M + 1) − g = ΣM
    out.offset = lota_offset_from_sums(lota_group_sum(p, groups, at::kDouble), sum_m, groups.rows, omega);
    // #(M ≠ 0) ± ΣM = 2·#(M = ±1).
    const at::Tensor marked = m1.ne(1).sum(at::kDouble), total = sum_m.sum().to(at::kDouble);
    out.stats = at::stack({(marked + total) * 0.5, (marked - total) * 0.5, out.offset.abs().sum(at::kDouble)});
    out.codes.qweight = pack_codes_unchecked(q_new, layer.bits);
    out.codes.markers = lota_markers_pack(m1);
    return out;
}

}  // namespace lota::quant
