// The per-step re-merge (see lota_remerge.h). Byte-sized tensor ops only; no .item(), no range
// checks that read back (the masks keep every code on the grid by construction).
//
// Note [merged codes and markers]
// The forward of a training step runs the merged codes Q' = Q + M (packed, b bits a weight). To
// re-merge after the optimizer step the base codes Q are needed as well: both the grid-edge masks and
// the new Q' depend on them. Keeping Q next to Q' would double the packed codes (the largest tensor
// of a quantized model). Q cannot be recovered from Q' and the old adapter alone (where P > ω and
// Q' = maxq, Q may be maxq − 1 with M = +1 or maxq with the marker masked), but one bit a weight
// settles it: where M ≠ 0 its sign is the sign of the old P (M = +1 needs P > ω, −1 needs P < −ω).
// So a layer keeps [M ≠ 0] at 1 bit a weight and an int8 copy of the adapter that made Q' (r·(K + N)
// bytes), and recomputes the old P at the next re-merge (one more exact rank-r GEMM): Q = Q' − M
// exactly, for 1.25× the bytes of one set of b = 4 codes (2-bit markers were 1.5×; 8B model: 0.9 GB
// less device memory while training).
//
// The arithmetic is done in 8-bit integers. Q = Q' − M and M + 1 = Q'_new + 1 − Q may pass through
// 256 for 8-bit codes (Q' = 255); 8-bit arithmetic wraps modulo 256 and the final values lie in
// [0, 255], so they are exact.
#include "quant/lota_remerge.h"

#include <cmath>
#include <cstdint>

#include <ATen/ATen.h>

#include "kernels/lota_remerge_cpu.h"
#include "kernels/lota_remerge_formula.h"
#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/lota_remerge_cuda.h"
#endif

namespace lota::quant {

LotaMergedCodes lota_merged_codes_init(const QuantizedWeight& base) {
    const int64_t n = base.in_features * base.out_features;
    LotaMergedCodes c;
    c.qweight = base.qweight;
    c.moved = at::zeros({(n + 7) / 8}, base.qweight.options().dtype(at::kByte));
    return c;
}

at::Tensor lota_moved_pack(const at::Tensor& bits) {
    LOTA_CHECK(bits.defined() && bits.scalar_type() == at::kByte, "LoTA: moved-code flags must be uint8 (0 or 1)");
    const int64_t n = bits.numel(), n8 = (n + 7) / 8;
    at::Tensor flat = bits.reshape({-1});
    if (n8 * 8 != n) flat = at::cat({flat, at::zeros({n8 * 8 - n}, flat.options())});  // padding: not moved
    const at::Tensor v = flat.view({n8, 8});
    at::Tensor out = v.select(1, 0).clone(at::MemoryFormat::Contiguous);
    for (int64_t j = 1; j < 8; ++j) out.bitwise_or_(v.select(1, j).bitwise_left_shift(j));
    return out;
}

at::Tensor lota_moved_unpack(const at::Tensor& packed, int64_t K, int64_t N) {
    const int64_t n8 = (K * N + 7) / 8;
    LOTA_CHECK(packed.defined() && packed.dim() == 1 && packed.size(0) == n8 && packed.scalar_type() == at::kByte,
               "LoTA: packed moved-code flags must be uint8 [%lld] for a [%lld, %lld] layer",
               static_cast<long long>(n8), static_cast<long long>(K), static_cast<long long>(N));
    at::Tensor out = at::empty({n8, 8}, packed.options());
    for (int64_t j = 0; j < 8; ++j) {
        at::Tensor dst = out.select(1, j);
        at::bitwise_and_out(dst, j == 0 ? packed : packed.bitwise_right_shift(j), 1);
    }
    return out.view({-1}).narrow(0, 0, K * N).view({K, N});
}

namespace {

void check_remerge_args(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                        const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    const int64_t K = layer.in_features, N = layer.out_features;
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
    LOTA_CHECK(codes.a_t.defined() == codes.b_t.defined() &&
                   (!codes.a_t.defined() || (codes.a_t.sizes() == a_t.sizes() && codes.b_t.sizes() == b_t.sizes())),
               "LoTA re-merge: the stored adapter copy does not match the new adapter's shapes");
}

// The layouts both fused kernels (CUDA and CPU) walk: 2/3/4/8-bit codes, contiguous groups whose rows fill
// whole packed words (kernels::remerge_tile_rows), N a multiple of 8 (one flag byte per row of 8 columns).
// Anything else (act-order, other widths) takes the tensor ops.
bool fused_remerge_layout(const QuantizedWeight& layer, const LotaGroups& groups) {
    const int bits = layer.bits;
    return (bits == 2 || bits == 3 || bits == 4 || bits == 8) && !groups.perm.defined() &&
           layer.out_features % 8 == 0 && groups.rows % kernels::remerge_tile_rows(bits) == 0;
}

#ifdef LOTA_WITH_CUDA
// The CUDA kernel: fused_remerge_layout, and ranks for which its float16 products are exact.
bool fused_remerge_applies(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                           const at::Tensor& a_t) {
    const bool codes_on_cuda = codes.qweight.is_cuda() && codes.moved.is_cuda() && a_t.is_cuda();
    return codes_on_cuda && fused_remerge_layout(layer, groups) && a_t.size(0) <= 2048;
}

LotaRemerged remerge_fused(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                           const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    const c10::cuda::OptionalCUDAGuard guard(codes.qweight.device());
    const int64_t K = layer.in_features, N = layer.out_features;
    // Both products are exact float16 GEMMs (Note [exact ternary GEMM] in lota.cpp).
    const at::Tensor p_new = lota_delta_w_float(a_t, b_t).contiguous();
    const at::Tensor p_old = codes.a_t.defined() ? lota_delta_w_float(codes.a_t, codes.b_t).contiguous() : at::Tensor();
    LOTA_ASSERT(p_new.scalar_type() == at::kHalf);  // fused_remerge_applies: CUDA and r ≤ 2048
    const at::Tensor qweight = codes.qweight.contiguous(), moved = codes.moved.contiguous();
    LotaRemerged out;
    out.codes.qweight = at::empty_like(qweight);
    out.codes.moved = at::empty_like(moved);
    out.offset = at::empty({groups.n_groups, N}, qweight.options().dtype(at::kFloat));
    const at::Tensor counts = at::zeros({2}, qweight.options().dtype(at::kLong));
    const int err = kernels::lota_remerge_cuda_launch(
        qweight.data_ptr<int32_t>(), moved.data_ptr<uint8_t>(),
        p_old.defined() ? reinterpret_cast<const uint16_t*>(p_old.data_ptr()) : nullptr,
        reinterpret_cast<const uint16_t*>(p_new.data_ptr()), out.codes.qweight.data_ptr<int32_t>(),
        out.codes.moved.data_ptr<uint8_t>(), out.offset.data_ptr<float>(),
        reinterpret_cast<unsigned long long*>(counts.data_ptr<int64_t>()), K, N, groups.rows, layer.bits,
        static_cast<int>(std::floor(omega)), omega, at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "LoTA re-merge: CUDA kernel launch failed: %s", kernels::dequant_cuda_error_string(err));
    out.stats = at::cat({counts.to(at::kDouble), out.offset.abs().sum(at::kDouble).view({1})});
    out.codes.a_t = a_t.clone();
    out.codes.b_t = b_t.clone();
    return out;
}
#endif

// The CPU kernel: fused_remerge_layout; its products are float32 (exact up to r = 2^24) and its group
// sums int32 (|ΣP| ≤ g·r).
bool cpu_fused_remerge_applies(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                               const at::Tensor& a_t) {
    return codes.qweight.is_cpu() && codes.moved.is_cpu() && a_t.is_cpu() && fused_remerge_layout(layer, groups) &&
           groups.rows * a_t.size(0) <= INT32_MAX;
}

LotaRemerged remerge_cpu_fused(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                               const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    const int64_t K = layer.in_features, N = layer.out_features, G = groups.n_groups;
    const at::Tensor p_new = lota_delta_w_float(a_t, b_t).contiguous();  // float32, exact integers
    const at::Tensor qweight = codes.qweight.contiguous(), moved = codes.moved.contiguous();
    // P_old is needed only where a code has moved. While few have (the usual case: a quantile of the
    // weights moves, by one step), the kernel takes r-term int8 dot products there; once more than 1/8
    // of the flag bytes are set (at least 1/64 of the weights moved), one GEMM is cheaper.
    at::Tensor p_old, a_old, b_old;
    if (codes.a_t.defined()) {
        if (moved.count_nonzero().item<int64_t>() > K * N / 64) {
            p_old = lota_delta_w_float(codes.a_t, codes.b_t).contiguous();
        } else {
            a_old = codes.a_t.t().contiguous();  // [K, r]
            b_old = codes.b_t.contiguous();      // [N, r]
        }
    }
    LotaRemerged out;
    out.codes.qweight = at::empty_like(qweight);
    out.codes.moved = at::empty_like(moved);
    const at::Tensor sum_p = at::empty({G, N}, at::kInt), sum_m = at::empty({G, N}, at::kInt);
    const at::Tensor counts = at::empty({2}, at::kLong);
    kernels::lota_remerge_cpu(qweight.data_ptr<int32_t>(), moved.data_ptr<uint8_t>(),
                              p_old.defined() ? p_old.data_ptr<float>() : nullptr,
                              a_old.defined() ? a_old.data_ptr<int8_t>() : nullptr,
                              b_old.defined() ? b_old.data_ptr<int8_t>() : nullptr, a_t.size(0),
                              p_new.data_ptr<float>(), out.codes.qweight.data_ptr<int32_t>(),
                              out.codes.moved.data_ptr<uint8_t>(), sum_p.data_ptr<int32_t>(),
                              sum_m.data_ptr<int32_t>(), counts.data_ptr<int64_t>(), K, N, groups.rows, layer.bits,
                              static_cast<int>(std::floor(omega)));
    out.offset = lota_offset_from_sums(sum_p, sum_m, groups.rows, omega);
    out.stats = at::cat({counts.to(at::kDouble), out.offset.abs().sum(at::kDouble).view({1})});
    out.codes.a_t = a_t.clone();
    out.codes.b_t = b_t.clone();
    return out;
}

// The tensor-op re-merge (arguments checked by the caller).
LotaRemerged remerge_ops(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                         const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    const int64_t K = layer.in_features, N = layer.out_features, maxq = layer.maxq();
    QuantizedWeight current = layer;
    current.qweight = codes.qweight;
    // Q = Q' − M with M = [moved]·sign(old P) (Note [merged codes and markers]), in int8 views of the
    // uint8 codes (the same bytes; the subtraction wraps modulo 256 to the exact code).
    const at::Tensor q = unpack_codes(current);
    if (codes.a_t.defined()) {
        const at::Tensor m = lota_moved_unpack(codes.moved, K, N).view(at::kChar);
        m.mul_(lota_delta_w_float(codes.a_t, codes.b_t).sign().to(at::kChar));
        q.view(at::kChar).sub_(m);
    }

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
    out.codes.moved = lota_moved_pack(m1.ne(1).to(at::kByte));
    out.codes.a_t = a_t.clone();
    out.codes.b_t = b_t.clone();
    return out;
}

}  // namespace

LotaRemerged lota_remerge(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                          const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    check_remerge_args(codes, layer, groups, a_t, b_t, omega);
#ifdef LOTA_WITH_CUDA
    if (fused_remerge_applies(codes, layer, groups, a_t)) return remerge_fused(codes, layer, groups, a_t, b_t, omega);
#endif
    if (cpu_fused_remerge_applies(codes, layer, groups, a_t))
        return remerge_cpu_fused(codes, layer, groups, a_t, b_t, omega);
    return remerge_ops(codes, layer, groups, a_t, b_t, omega);
}

LotaRemerged lota_remerge_ops(const LotaMergedCodes& codes, const QuantizedWeight& layer, const LotaGroups& groups,
                              const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    check_remerge_args(codes, layer, groups, a_t, b_t, omega);
    return remerge_ops(codes, layer, groups, a_t, b_t, omega);
}

}  // namespace lota::quant
