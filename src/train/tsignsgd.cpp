// t-SignSGD (see tsignsgd.h, DESIGN §1). Exact per-tensor quantiles via kthvalue; thresholds are
// applied as float32 comparisons chosen to select exactly the entries a float64 comparison would
// (Note [exact thresholds]).
#include "train/tsignsgd.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::train {
namespace {

void check_level(double q, const char* name) {
    LOTA_CHECK(std::isfinite(q) && q >= 0 && q <= 1, "t-SignSGD: %s must lie in [0, 1], got %g", name, q);
}

void check_options(const TSignSgdOptions& o) {
    check_level(o.q_start, "q_start");
    check_level(o.q_mid, "q_mid");
    check_level(o.q_end, "q_end");
    check_level(o.guard_quantile, "guard_quantile");
    LOTA_CHECK(o.phase1_frac > 0 && o.phase1_frac <= 1, "t-SignSGD: phase1_frac must lie in (0, 1], got %g",
               o.phase1_frac);
    LOTA_CHECK(std::isfinite(o.tau) && o.tau >= 0, "t-SignSGD: tau must be >= 0, got %g", o.tau);
    LOTA_CHECK(!std::isnan(o.guard_norm), "t-SignSGD: guard_norm is NaN");
}

// a + f·(b − a) with f ∈ [0, 1], returning b exactly at f = 1.
double lerp_level(double a, double b, double f) { return f >= 1 ? b : a + f * (b - a); }

// The order statistics bracketing a quantile: value = lerp(lo, hi), lo ≤ value ≤ hi.
struct QuantileBracket {
    double value = 0;
    float lo = 0, hi = 0;
};

QuantileBracket exact_quantile(const at::Tensor& x, double q) {
    check_level(q, "quantile level");
    LOTA_CHECK(x.defined() && x.numel() > 0, "t-SignSGD: quantile of an empty tensor");
    LOTA_CHECK(x.scalar_type() == at::kFloat, "t-SignSGD: quantile input must be float32, got %s",
               c10::toString(x.scalar_type()));
    const at::Tensor flat = x.reshape({-1});
    const int64_t n = flat.numel();
    // torch.quantile (linear): rank q·(n−1), lower index ⌊rank⌋, weight = rank − ⌊rank⌋.
    const double rank = q * static_cast<double>(n - 1);
    const int64_t lo = std::min<int64_t>(static_cast<int64_t>(std::floor(rank)), n - 1);
    const int64_t hi = std::min<int64_t>(lo + 1, n - 1);
    const double w = rank - static_cast<double>(lo);
    QuantileBracket b;
    b.lo = std::get<0>(at::kthvalue(flat, lo + 1)).item<float>();  // kthvalue's k is 1-based
    b.hi = hi == lo ? b.lo : std::get<0>(at::kthvalue(flat, hi + 1)).item<float>();
    const double vlo = b.lo, vhi = b.hi;
    // Same two-sided lerp as ATen's lerp kernel (used by torch.quantile), here in float64.
    b.value = w < 0.5 ? vlo + w * (vhi - vlo) : vhi - (vhi - vlo) * (1 - w);
    return b;
}

// Note [exact thresholds]
// lo and hi are adjacent order statistics of |g|, so no element lies strictly between them. For
// lo ≤ θ < hi, {|g| > θ} = {|g| > lo}; for θ = hi it is {|g| > hi}. Either way a float32 compare
// against an element value selects exactly the set a float64 compare against θ would. Likewise
// |g| > τ (float64) ⟺ |g| > (largest float32 ≤ τ).
float float_threshold(const QuantileBracket& b) { return b.value < static_cast<double>(b.hi) ? b.lo : b.hi; }

float float_below(double v) {
    float f = static_cast<float>(v);
    if (static_cast<double>(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

}  // namespace

double tsignsgd_quantile(int64_t t, int64_t T, const TSignSgdOptions& o) {
    check_options(o);
    LOTA_CHECK(T >= 1 && t >= 0, "t-SignSGD: step %lld of %lld: need T >= 1 and t >= 0", static_cast<long long>(t),
               static_cast<long long>(T));
    if (t >= T) return o.q_end;
    const double td = static_cast<double>(t), t1 = o.phase1_frac * static_cast<double>(T);
    if (td <= t1) return lerp_level(o.q_start, o.q_mid, td / t1);
    if (o.schedule == TSignSchedule::PAPER_FIXED_LAST) return o.q_end;
    return lerp_level(o.q_mid, o.q_end, (td - t1) / (static_cast<double>(T) - t1));
}

double tsignsgd_exact_quantile(const at::Tensor& x, double q) { return exact_quantile(x, q).value; }

TSignSgdStats tsignsgd_step(const std::vector<TSignSgdParam>& params, int64_t t, int64_t T,
                            const TSignSgdOptions& o) {
    TSignSgdStats st;
    st.sigma_t = tsignsgd_quantile(t, T, o);
    for (size_t i = 0; i < params.size(); ++i) {
        const TSignSgdParam& p = params[i];
        LOTA_CHECK(p.param.defined() && p.param.scalar_type() == at::kChar,
                   "t-SignSGD: parameter %zu must be an int8 tensor", i);
        LOTA_CHECK(p.grad.defined() && p.grad.scalar_type() == at::kFloat && p.grad.sizes() == p.param.sizes() &&
                       p.grad.device() == p.param.device(),
                   "t-SignSGD: gradient %zu must be float32 of shape %s on the parameter's device, got %s %s", i,
                   shape_str(p.param.sizes().vec()).c_str(),
                   p.grad.defined() ? c10::toString(p.grad.scalar_type()) : "(undefined)",
                   p.grad.defined() ? shape_str(p.grad.sizes().vec()).c_str() : "");
    }
    double sq = 0;
    for (const TSignSgdParam& p : params) {
        sq += at::linalg_vector_norm(p.grad, 2, std::nullopt, false, at::kDouble).pow(2).item<double>();
    }
    st.grad_norm = std::sqrt(sq);
    const bool phase2 = static_cast<double>(t) > o.phase1_frac * static_cast<double>(T);
    st.guard_active = phase2 && st.grad_norm > o.guard_norm;
    const float tau_f = float_below(o.tau);

    for (const TSignSgdParam& p : params) {
        if (p.grad.numel() == 0) continue;
        const at::Tensor mag = p.grad.abs();
        const float thr = std::max(float_threshold(exact_quantile(mag, st.sigma_t)), tau_f);
        at::Tensor sel = mag.gt(thr);
        if (st.guard_active) {
            const at::Tensor keep = mag.le(float_threshold(exact_quantile(mag, o.guard_quantile)));
            st.n_guarded += sel.logical_and(keep.logical_not()).sum().item<int64_t>();
            sel.logical_and_(keep);
        }
        st.n_selected += sel.sum().item<int64_t>();
        // p ← clamp(p − sign(g), −1, 1) on the selected entries (integers: round() is the identity).
        const at::Tensor step = at::where(sel, p.grad.sign().to(at::kChar), at::zeros({}, p.param.options()));
        const at::Tensor updated = (p.param - step).clamp_(-1, 1);
        st.n_changed += updated.ne(p.param).sum().item<int64_t>();
        p.param.copy_(updated);
    }
    return st;
}

}  // namespace lota::train
