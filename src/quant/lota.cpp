// LoTA-QAF ternary adaptation math (see lota.h and DESIGN §1). Plain ATen ops, device-agnostic:
// the same code is the CPU reference and runs on CUDA tensors. Group sums go through a stable
// sort of the rows by group (see Note [grouped rows]) so results are deterministic and act-order
// (non-contiguous groups) needs no special case.
#include "quant/lota.h"

#include <cmath>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::quant {
namespace {

// Note [exact ternary GEMM]
// P = (b_t·a_t)ᵀ is computed by a float32 GEMM. Every input is −1, 0 or +1 (exact in fp32, and in
// TF32/bf16 on GPUs), every product is −1, 0 or +1 and every partial sum is an integer of magnitude
// ≤ r. Integers up to 2^24 are exact in fp32, so for r ≤ 2^24 the result is exact whatever the
// summation order or blocking of the GEMM. CPU integer GEMM would be slow and CUDA has none for int32.
// The float16 variant (lota_delta_w_float on CUDA) is exact for the same reason up to r = 2048: every
// integer of magnitude ≤ 2048 is a float16, so no partial sum is ever rounded, whatever precision
// the GEMM accumulates in.
constexpr int64_t kMaxExactRank = int64_t(1) << 24;
constexpr int64_t kMaxExactRankHalf = 2048;

void check_int8_2d(const at::Tensor& t, const char* name) {
    LOTA_CHECK(t.defined(), "LoTA: %s is undefined", name);
    LOTA_CHECK(t.dim() == 2 && t.scalar_type() == at::kChar, "LoTA: %s must be int8 2-D, got %s %s", name,
               c10::toString(t.scalar_type()), shape_str(t.sizes().vec()).c_str());
}

void check_adapters(const at::Tensor& a_t, const at::Tensor& b_t) {
    check_int8_2d(a_t, "lora_A.weight (a_t)");
    check_int8_2d(b_t, "lora_B.weight (b_t)");
    LOTA_CHECK(a_t.size(0) == b_t.size(1), "LoTA: rank mismatch: lora_A.weight %s is [r, K], lora_B.weight %s is [N, r]",
               shape_str(a_t.sizes().vec()).c_str(), shape_str(b_t.sizes().vec()).c_str());
    LOTA_CHECK(a_t.size(0) >= 1 && a_t.size(0) <= kMaxExactRank, "LoTA: rank %lld out of range [1, 2^24]",
               static_cast<long long>(a_t.size(0)));
}

void check_kn(const at::Tensor& t, int64_t K, int64_t N, const char* name) {
    LOTA_CHECK(t.defined() && t.dim() == 2 && t.size(0) == K && t.size(1) == N, "LoTA: %s has shape %s, expected [%lld, %lld]",
               name, t.defined() ? shape_str(t.sizes().vec()).c_str() : "(undefined)", static_cast<long long>(K),
               static_cast<long long>(N));
}

void check_groups_cover(int64_t G, int64_t g, int64_t K) {
    LOTA_CHECK(G * g == K, "LoTA: %lld groups of %lld rows do not cover K = %lld", static_cast<long long>(G),
               static_cast<long long>(g), static_cast<long long>(K));
}

void check_omega(double omega) {
    LOTA_CHECK(std::isfinite(omega) && omega > 0, "LoTA: threshold omega must be finite and > 0, got %g", omega);
}

// Note [grouped rows]
// Group j holds the rows {k : g_idx[k] == j}, exactly g = K/G of them (lota_group_size checks this;
// training checks it once, in lota_groups_make). `perm` is a stable argsort of g_idx, so rows
// perm[j·g .. j·g+g−1] are group j in ascending k. x.index_select(0, perm).view({G, g, N}) puts the
// groups in blocks; sums over the middle dimension are then deterministic reductions (no atomics).
// For sorted g_idx (no act-order) perm is the identity, and LotaGroups leaves it undefined so the
// hot paths skip the row gather (x.view({G, g, N}) directly: the same values in the same order).
at::Tensor group_perm(const at::Tensor& g_idx) {
    return std::get<1>(at::sort(g_idx.to(at::kLong), /*stable=*/true, /*dim=*/0, /*descending=*/false));
}

int64_t checked_group_rows(int64_t K, int64_t n_groups) {
    LOTA_CHECK(n_groups >= 1 && K % n_groups == 0, "LoTA: K = %lld rows cannot form %lld groups of equal size",
               static_cast<long long>(K), static_cast<long long>(n_groups));
    return K / n_groups;
}

}  // namespace

at::Tensor lota_init_a(int64_t r, int64_t in_features, std::optional<at::Generator> generator) {
    LOTA_CHECK(r >= 1 && in_features >= 1, "LoTA init: rank %lld and in_features %lld must be >= 1",
               static_cast<long long>(r), static_cast<long long>(in_features));
    // kaiming_normal_ on a Linear(K, r) weight: fan_in = K, gain √2 (leaky_relu with a = 0).
    const double std_dev = std::sqrt(2.0 / static_cast<double>(in_features));
    at::Tensor a = at::empty({r, in_features}, at::kFloat).normal_(0.0, std_dev, generator);
    const at::Tensor delta = 0.75 * a.abs().mean();
    return (a.gt(delta).to(at::kChar) - a.lt(-delta).to(at::kChar)).contiguous();
}

at::Tensor lota_init_b(int64_t out_features, int64_t r) {
    LOTA_CHECK(r >= 1 && out_features >= 1, "LoTA init: rank %lld and out_features %lld must be >= 1",
               static_cast<long long>(r), static_cast<long long>(out_features));
    return at::zeros({out_features, r}, at::kChar);
}

int64_t lota_group_size(const at::Tensor& g_idx, int64_t n_groups) {
    LOTA_CHECK(g_idx.defined() && g_idx.dim() == 1 && at::isIntegralType(g_idx.scalar_type(), false),
               "LoTA: g_idx must be a 1-D integer tensor, got %s",
               g_idx.defined() ? shape_str(g_idx.sizes().vec()).c_str() : "(undefined)");
    const int64_t K = g_idx.size(0);
    const int64_t g = checked_group_rows(K, n_groups);
    const at::Tensor idx = g_idx.to(at::kLong);
    const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    LOTA_CHECK(lo >= 0 && hi < n_groups, "LoTA: g_idx values must lie in [0, %lld), found [%lld, %lld]",
               static_cast<long long>(n_groups), static_cast<long long>(lo), static_cast<long long>(hi));
    const at::Tensor counts = at::bincount(idx, {}, n_groups);
    LOTA_CHECK(counts.eq(g).all().item<bool>(),
               "LoTA: every group must hold exactly K/G = %lld rows of g_idx, found between %lld and %lld",
               static_cast<long long>(g), static_cast<long long>(counts.min().item<int64_t>()),
               static_cast<long long>(counts.max().item<int64_t>()));
    return g;
}

LotaGroups lota_groups_make(const at::Tensor& g_idx, int64_t n_groups) {
    LotaGroups groups;
    groups.rows = lota_group_size(g_idx, n_groups);
    groups.n_groups = n_groups;
    const at::Tensor idx = g_idx.to(at::kLong);
    // Sorted, with exactly g rows per group, means g_idx[k] = k / g: the identity grouping.
    const bool sorted = idx.size(0) < 2 || idx.slice(0, 1).ge(idx.slice(0, 0, idx.size(0) - 1)).all().item<bool>();
    if (!sorted) groups.perm = group_perm(g_idx);
    return groups;
}

at::Tensor lota_group_sum(const at::Tensor& x, const LotaGroups& groups, at::ScalarType dtype) {
    const at::Tensor rows = groups.perm.defined() ? x.index_select(0, groups.perm) : x;
    return rows.reshape({groups.n_groups, groups.rows, x.size(1)}).sum(1, false, dtype);
}

at::Tensor lota_delta_w(const at::Tensor& a_t, const at::Tensor& b_t) {
    check_adapters(a_t, b_t);
    // [K, r]·[r, N] in fp32, exact (Note [exact ternary GEMM]).
    return at::mm(a_t.t().to(at::kFloat), b_t.t().to(at::kFloat)).to(at::kInt);
}

at::Tensor lota_delta_w_float(const at::Tensor& a_t, const at::Tensor& b_t) {
    check_adapters(a_t, b_t);
    // CPU GEMMs in float16 are slow; CUDA ones are exact up to r = 2048 (Note [exact ternary GEMM]).
    const at::ScalarType t = a_t.is_cuda() && a_t.size(0) <= kMaxExactRankHalf ? at::kHalf : at::kFloat;
    return at::mm(a_t.t().to(t), b_t.t().to(t));
}

at::Tensor lota_markers(const at::Tensor& delta_w, const at::Tensor& q, double omega, int64_t maxq) {
    check_omega(omega);
    LOTA_CHECK(delta_w.defined() && delta_w.dim() == 2 && at::isIntegralType(delta_w.scalar_type(), false),
               "LoTA: delta_w must be an integer 2-D tensor");
    check_kn(q, delta_w.size(0), delta_w.size(1), "codes Q");
    LOTA_CHECK(at::isIntegralType(q.scalar_type(), false), "LoTA: codes Q must be integer, got %s",
               c10::toString(q.scalar_type()));
    LOTA_CHECK(maxq >= 1, "LoTA: maxq must be >= 1, got %lld", static_cast<long long>(maxq));
    // For integer P and omega > 0:  P > ω ⟺ P > ⌊ω⌋  and  P < −ω ⟺ P < −⌊ω⌋  (integer compares, exact).
    const int64_t t = static_cast<int64_t>(std::floor(omega));
    const at::Tensor up = delta_w.gt(t).logical_and_(q.lt(maxq));
    const at::Tensor down = delta_w.lt(-t).logical_and_(q.gt(0));
    return up.to(at::kChar) - down.to(at::kChar);
}

// Note [offset rounding]
// F[j,n] = (ΣP − ω·ΣM) / (g·ω). ΣP and ΣM are integer sums (exact, |ΣP| ≤ g·r). The numerator is
// formed in float64: exact whenever ω has at most 53 − log2(g·r) significant bits (0.75·r, 0.875·r
// and every float32 value qualify). The quotient is rounded to float64 and then to float32; that
// float32 is F by definition, stored with the merged model and used by training and inference.
at::Tensor lota_offset(const at::Tensor& delta_w, const at::Tensor& markers, const at::Tensor& g_idx, int64_t n_groups,
                       double omega) {
    check_omega(omega);
    LOTA_CHECK(delta_w.defined() && delta_w.dim() == 2, "LoTA: delta_w must be 2-D");
    const int64_t K = delta_w.size(0), N = delta_w.size(1);
    check_kn(markers, K, N, "markers M");
    LOTA_CHECK(g_idx.defined() && g_idx.dim() == 1 && g_idx.size(0) == K, "LoTA: g_idx must be [%lld]",
               static_cast<long long>(K));
    LotaGroups groups;
    groups.rows = lota_group_size(g_idx, n_groups);
    groups.n_groups = n_groups;
    groups.perm = group_perm(g_idx);
    return lota_offset_from_sums(lota_group_sum(delta_w, groups, at::kLong), lota_group_sum(markers, groups, at::kLong),
                                 groups.rows, omega);
}

at::Tensor lota_offset_from_sums(const at::Tensor& sum_p, const at::Tensor& sum_m, int64_t g, double omega) {
    check_omega(omega);
    const at::Tensor num = sum_p.to(at::kDouble) - sum_m.to(at::kDouble) * omega;
    return num.div_(static_cast<double>(g) * omega).to(at::kFloat);
}

LotaMergeTerms lota_merge_reference(const at::Tensor& a_t, const at::Tensor& b_t, const at::Tensor& q,
                                    const at::Tensor& g_idx, int64_t n_groups, double omega, int64_t maxq) {
    const at::Tensor delta_w = lota_delta_w(a_t, b_t);
    LotaMergeTerms out;
    out.markers = lota_markers(delta_w, q, omega, maxq);
    out.offset = lota_offset(delta_w, out.markers, g_idx, n_groups, omega);
    return out;
}

at::Tensor lota_dequant_reference(const at::Tensor& q, const at::Tensor& markers, const at::Tensor& zeros,
                                  const at::Tensor& scales, const at::Tensor& offset, const at::Tensor& g_idx) {
    LOTA_CHECK(q.defined() && q.dim() == 2 && at::isIntegralType(q.scalar_type(), false), "LoTA: codes Q must be integer 2-D");
    const int64_t K = q.size(0), N = q.size(1);
    LOTA_CHECK(g_idx.defined() && g_idx.dim() == 1 && g_idx.size(0) == K, "LoTA: g_idx must be [%lld]",
               static_cast<long long>(K));
    LOTA_CHECK(zeros.defined() && zeros.dim() == 2 && zeros.size(1) == N && at::isIntegralType(zeros.scalar_type(), false),
               "LoTA: zeros Z must be integer [G, %lld]", static_cast<long long>(N));
    const int64_t G = zeros.size(0);
    check_kn(scales, G, N, "scales S");
    const at::Tensor idx = g_idx.to(at::kLong);
    at::Tensor codes = q.to(at::kInt);
    if (markers.defined()) {
        check_kn(markers, K, N, "markers M");
        codes = codes + markers.to(at::kInt);
    }
    codes = codes - zeros.to(at::kInt).index_select(0, idx);  // Q + M − Z, exact integers
    at::Tensor w_hat = codes.to(at::kFloat);
    if (offset.defined()) {
        check_kn(offset, G, N, "offset F");
        LOTA_CHECK(offset.scalar_type() == at::kFloat, "LoTA: offset F must be float32");
        w_hat.add_(offset.index_select(0, idx));
    }
    return w_hat.mul_(scales.to(at::kFloat).index_select(0, idx));
}

LotaGrads lota_backward(const at::Tensor& gw, const at::Tensor& scales, const at::Tensor& g_idx, int64_t n_groups,
                        double omega, const at::Tensor& a_t, const at::Tensor& b_t) {
    check_adapters(a_t, b_t);
    LOTA_CHECK(g_idx.defined() && g_idx.dim() == 1 && g_idx.size(0) == a_t.size(1), "LoTA: g_idx must be [%lld]",
               static_cast<long long>(a_t.size(1)));
    LotaGroups groups;
    groups.rows = checked_group_rows(g_idx.size(0), n_groups);
    groups.n_groups = n_groups;
    groups.perm = group_perm(g_idx);
    return lota_backward(gw, scales, groups, omega, a_t, b_t);
}

LotaGrads lota_backward(const at::Tensor& gw, const at::Tensor& scales, const LotaGroups& groups, double omega,
                        const at::Tensor& a_t, const at::Tensor& b_t, bool gw_scratch) {
    check_omega(omega);
    check_adapters(a_t, b_t);
    const int64_t r = a_t.size(0), K = a_t.size(1), N = b_t.size(0), G = groups.n_groups, g = groups.rows;
    check_kn(gw, K, N, "dL/dW' (gw)");
    const at::ScalarType in_t = gw.scalar_type();
    LOTA_CHECK(in_t == at::kFloat || (at::isReducedFloatingType(in_t) && gw.is_cuda()),
               "LoTA: dL/dW' must be float32 (or bfloat16/float16 on CUDA), got %s on %s", c10::toString(in_t),
               gw.device().str().c_str());
    // float16 lacks bfloat16's range: S·Gw of real gradients (~1e-5) falls into its subnormals, so
    // only bfloat16 stays 16-bit (Note [16-bit adapter gradients]); float16 is computed in float32.
    const bool low = in_t == at::kBFloat16;
    const at::ScalarType gt = low ? at::kBFloat16 : at::kFloat;
    check_kn(scales, G, N, "scales S");
    check_groups_cover(G, g, K);
    const double c = 1.0 / (static_cast<double>(g) * omega);
    const at::Tensor& perm = groups.perm;  // Note [grouped rows]; undefined = identity

    // Gs in grouped row order: gs[j, :, n] = S[j, n] · Gw[rows of group j, n].
    // gs is scaled in place: a fresh tensor unless the caller handed gw over (gw_scratch).
    const bool owned = perm.defined() || (gw_scratch && gw.is_contiguous());
    at::Tensor gs = (perm.defined() ? gw.index_select(0, perm) : gw)
                        .to(gt, /*non_blocking=*/false, /*copy=*/!owned, at::MemoryFormat::Contiguous);
    gs = gs.view({G, g, N});
    gs.mul_(scales.to(at::kFloat).view({G, 1, N}));  // 16-bit gs: the product in float32, rounded once
    const at::Tensor gsum = gs.sum(1, false, at::kFloat);  // [G, N]
    const at::Tensor gs2 = gs.view({K, N});
    const at::Tensor a_s = (perm.defined() ? a_t.index_select(1, perm) : a_t).to(at::kFloat);  // [r, K] grouped
    const at::Tensor bf = b_t.to(at::kFloat);                                                  // [N, r]

    // ∂P = Gs + c·gsum broadcast over each group's rows, so
    //   ∂P·b_t = Gs·b_t + c·(gsum·b_t) broadcast  ([K, r], grouped rows), and
    //   ∂Pᵀ·a_tᵀ = Gsᵀ·a_tᵀ + c·gsumᵀ·asum, asum[j, i] = Σ_{k in group j} a_t[i, k].
    // Note [16-bit adapter gradients]
    // On CUDA the training caller hands over Gw as the bfloat16 result of the x^T·dy GEMM (its inputs are bf16
    // anyway). Keeping Gs in 16 bits and running the two K·N·r GEMMs on tensor cores with float32
    // outputs (the ternary factors are exact in 16 bits) moves ≈ 10 bytes a weight per micro-batch
    // instead of ≈ 30 and skips two float32 SIMT GEMMs: ≈ 0.1 s of an 8B step (bench/lota_step.md). The
    // one extra rounding (S·Gw to 16 bits) is of the size of Gw's own; the official code computes these
    // gradients in bf16 autograd.
    at::Tensor da = (low ? at::mm(gs2, bf.to(gt), at::kFloat) : at::mm(gs2, bf)).view({G, g, r});
    da.add_(at::mm(gsum, bf).view({G, 1, r}), c);
    at::Tensor db = low ? at::mm(gs2.t(), a_s.t().to(gt), at::kFloat) : at::mm(gs2.t(), a_s.t());
    const at::Tensor asum = a_s.view({r, G, g}).sum(2);  // [r, G]
    db.addmm_(gsum.t(), asum.t(), 1.0, c);

    LotaGrads out;
    const at::Tensor da_rows = da.view({K, r});
    const at::Tensor da_k = perm.defined() ? at::empty({K, r}, da.options()).index_copy_(0, perm, da_rows) : da_rows;
    out.a_t = da_k.t().contiguous();
    out.b_t = db;
    return out;
}

bool lota_backward_from_inputs_pays(const LotaGroups& groups, int64_t rank, int64_t in_features) {
    return !groups.perm.defined() && 2 * rank * groups.n_groups < in_features;
}

// With Gw[k, n] = Σ_t x[t, k]·dy[t, n] substituted into lota_backward's two products (j the group of k,
// c = 1/(g·ω), xs[t, j] = Σ_{k in j} x[t, k]):
//   gsum[j, n] = S[j, n]·Σ_t xs[t, j]·dy[t, n]
//   ∂a_t[:, k]ᵀ = Σ_t x[t, k]·U[t, j, :] + c·(gsum·b_t)[j, :],   U[t, j, :] = Σ_n dy[t, n]·S[j, n]·b_t[n, :]
//   ∂b_t[n, :]  = Σ_j S[j, n]·Σ_t dy[t, n]·V[t, j, :] + c·(gsumᵀ·asum)[n, :],   V[t, j, :] = Σ_{k in j} x[t, k]·a_t[:, k]
// U and V are [T, G·r]: two T·N·G·r GEMMs and two T·K·r batched ones replace the T·K·N GEMM of Gw.
LotaGrads lota_backward_from_inputs(const at::Tensor& x_in, const at::Tensor& dy_in, const at::Tensor& scales,
                                    const LotaGroups& groups, double omega, const at::Tensor& a_t,
                                    const at::Tensor& b_t) {
    check_omega(omega);
    check_adapters(a_t, b_t);
    LOTA_CHECK(!groups.perm.defined(), "LoTA: lota_backward_from_inputs needs contiguous groups");
    const int64_t r = a_t.size(0), K = a_t.size(1), N = b_t.size(0), G = groups.n_groups, g = groups.rows;
    const at::Tensor x = x_in.reshape({-1, K}).to(at::kFloat);
    const at::Tensor dy = dy_in.reshape({-1, N}).to(at::kFloat);
    const int64_t T = x.size(0);
    LOTA_CHECK(dy.size(0) == T, "LoTA: x %s and dL/dy %s disagree on the number of rows",
               shape_str(x_in.sizes().vec()).c_str(), shape_str(dy_in.sizes().vec()).c_str());
    check_kn(scales, G, N, "scales S");
    check_groups_cover(G, g, K);
    const double c = 1.0 / (static_cast<double>(g) * omega);
    const at::Tensor S = scales.to(at::kFloat);                 // [G, N]
    const at::Tensor af = a_t.to(at::kFloat).view({r, G, g});   // [r, G, g]
    const at::Tensor bf = b_t.to(at::kFloat);                   // [N, r]
    const at::Tensor xg = x.view({T, G, g}).permute({1, 0, 2});  // [G, T, g]

    const at::Tensor xs = x.view({T, G, g}).sum(2);             // [T, G]
    const at::Tensor gsum = at::mm(xs.t(), dy).mul_(S);         // [G, N]

    // ∂a_t: U = dy·SB with SB[n, j·r + i] = S[j, n]·b_t[n, i]; then per group xⱼᵀ·Uⱼ.
    const at::Tensor sb = (S.t().unsqueeze(2) * bf.unsqueeze(1)).reshape({N, G * r});
    const at::Tensor U = at::mm(dy, sb).view({T, G, r}).permute({1, 0, 2});  // [G, T, r]
    at::Tensor da = at::bmm(xg.transpose(1, 2), U);                          // [G, g, r]
    da.add_(at::mm(gsum, bf).view({G, 1, r}), c);

    // ∂b_t: V = per group xⱼ·a_tⱼᵀ; D = dyᵀ·V, summed over groups with weights S[j, n].
    const at::Tensor V = at::bmm(xg, af.permute({1, 2, 0}));                 // [G, T, r]
    const at::Tensor D = at::mm(dy.t(), V.permute({1, 0, 2}).reshape({T, G * r})).view({N, G, r});
    at::Tensor db = (D * S.t().unsqueeze(2)).sum(1);                         // [N, r]
    const at::Tensor asum = af.sum(2);                                       // [r, G]
    db.addmm_(gsum.t(), asum.t(), 1.0, c);

    LotaGrads out;
    out.a_t = da.view({K, r}).t().contiguous();
    out.b_t = db;
    return out;
}

}  // namespace lota::quant
