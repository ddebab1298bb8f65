// t-SignSGD (see tsignsgd.h, DESIGN §1). Exact per-tensor quantiles (sort on CUDA, kthvalue on the
// CPU); thresholds are applied as float32 comparisons chosen to select exactly the entries a float64
// comparison would (Note [exact thresholds]). The step runs on the device without host syncs; its
// statistics stay there as float64 scalars (tsignsgd_step_async).
#include "train/tsignsgd.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

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
    LOTA_CHECK(std::isfinite(o.momentum) && o.momentum >= 0 && o.momentum < 1,
               "t-SignSGD: momentum must lie in [0, 1), got %g", o.momentum);
}

// a + f·(b − a) with f ∈ [0, 1], returning b exactly at f = 1.
double lerp_level(double a, double b, double f) { return f >= 1 ? b : a + f * (b - a); }

// torch.quantile (linear) of n values: rank q·(n−1), lower index ⌊rank⌋, weight = rank − ⌊rank⌋.
struct QuantileRank {
    int64_t lo = 0, hi = 0;
    double w = 0;
};

QuantileRank quantile_rank(int64_t n, double q) {
    const double rank = q * static_cast<double>(n - 1);
    QuantileRank r;
    r.lo = std::min<int64_t>(static_cast<int64_t>(std::floor(rank)), n - 1);
    r.hi = std::min<int64_t>(r.lo + 1, n - 1);
    r.w = rank - static_cast<double>(r.lo);
    return r;
}

// torch.quantile's value (linear interpolation between the bracketing order statistics), read back.
double exact_quantile(const at::Tensor& x, double q) {
    check_level(q, "quantile level");
    LOTA_CHECK(x.defined() && x.numel() > 0, "t-SignSGD: quantile of an empty tensor");
    LOTA_CHECK(x.scalar_type() == at::kFloat, "t-SignSGD: quantile input must be float32, got %s",
               c10::toString(x.scalar_type()));
    const at::Tensor flat = x.reshape({-1});
    const QuantileRank r = quantile_rank(flat.numel(), q);
    const double vlo = std::get<0>(at::kthvalue(flat, r.lo + 1)).item<float>();  // kthvalue's k is 1-based
    const double vhi = r.hi == r.lo ? vlo : std::get<0>(at::kthvalue(flat, r.hi + 1)).item<float>();
    // Same two-sided lerp as ATen's lerp kernel (used by torch.quantile), here in float64.
    return r.w < 0.5 ? vlo + (vhi - vlo) * r.w : vhi - (vhi - vlo) * (1 - r.w);
}

// Note [exact thresholds]
// lo and hi are adjacent order statistics of |g|, so no element lies strictly between them. For
// lo ≤ θ < hi, {|g| > θ} = {|g| > lo}; for θ = hi it is {|g| > hi}. Either way a float32 compare
// against an element value (RowOrder::threshold) selects exactly the set a float64 compare against
// θ would. Likewise |g| > τ (float64) ⟺ |g| > (largest float32 ≤ τ).
float float_below(double v) {
    float f = static_cast<float>(v);
    if (static_cast<double>(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

void check_params(const std::vector<TSignSgdParam>& params) {
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
        LOTA_CHECK(p.param.device() == params[0].param.device(),
                   "t-SignSGD: parameter %zu is on %s, parameter 0 on %s (one device per step)", i,
                   p.param.device().str().c_str(), params[0].param.device().str().c_str());
    }
}

// Note [batched quantiles]
// Quantiles are per tensor, but tensors of equal size (the same projection in every block) can be
// processed as the rows of one [m, n] matrix: row-wise order statistics, thresholds and updates are
// exactly the per-tensor ones, with a few kernel launches per batch instead of per tensor. Batches
// are capped at kBatchElements so the stacked copies stay small next to the model.
constexpr int64_t kBatchElements = int64_t(1) << 24;

std::vector<std::vector<size_t>> batches_by_size(const std::vector<TSignSgdParam>& params) {
    std::map<int64_t, std::vector<size_t>> by_size;
    for (size_t i = 0; i < params.size(); ++i) by_size[params[i].grad.numel()].push_back(i);
    std::vector<std::vector<size_t>> out;
    for (const auto& [n, idx] : by_size) {
        const size_t per = static_cast<size_t>(std::max<int64_t>(1, kBatchElements / std::max<int64_t>(n, 1)));
        for (size_t i = 0; i < idx.size(); i += per)
            out.emplace_back(idx.begin() + i, idx.begin() + std::min(idx.size(), i + per));
    }
    return out;
}

// The gradients (or parameters) of `batch` as rows [m, n]; a view when m = 1.
at::Tensor stack_rows(const std::vector<TSignSgdParam>& params, const std::vector<size_t>& batch, bool grads) {
    std::vector<at::Tensor> rows;
    for (const size_t i : batch) rows.push_back((grads ? params[i].grad : params[i].param).reshape({1, -1}));
    return rows.size() == 1 ? rows[0] : at::cat(rows, 0);
}

// Row-wise order statistics of x [m, n] for exact quantiles, kept on the device. CUDA: one
// segmented sort serves every rank (kthvalue runs one thread block per row there, far slower for
// rows of a million elements). CPU: kthvalue (selection, no sort). Both give the same values.
class RowOrder {
  public:
    explicit RowOrder(const at::Tensor& x) : x_(x) {
        if (!x.is_cpu()) sorted_ = std::get<0>(at::sort(x, 1));
    }
    /// Value of 0-based rank k of every row: float32 [m].
    at::Tensor at(int64_t k) const {
        return sorted_.defined() ? sorted_.select(1, k) : std::get<0>(at::kthvalue(x_, k + 1, 1));
    }
    /// θ = quantile(row, q) as the float32 threshold of Note [exact thresholds], per row: [m].
    at::Tensor threshold(double q) const {
        const QuantileRank r = quantile_rank(x_.size(1), q);
        const at::Tensor lo = at(r.lo), hi = r.hi == r.lo ? lo : at(r.hi);
        const at::Tensor dlo = lo.to(at::kDouble), dhi = hi.to(at::kDouble);
        // The two-sided lerp of exact_quantile, with the same float64 operations in the same order.
        const at::Tensor value = r.w < 0.5 ? dlo + (dhi - dlo).mul_(r.w) : dhi - (dhi - dlo).mul_(1 - r.w);
        return at::where(value.lt(dhi), lo, hi);
    }

  private:
    at::Tensor x_, sorted_;
};

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

double tsignsgd_exact_quantile(const at::Tensor& x, double q) { return exact_quantile(x, q); }

TSignSgdStats tsignsgd_step(const std::vector<TSignSgdParam>& params, int64_t t, int64_t T,
                            const TSignSgdOptions& o) {
    const TSignSgdDeviceStats d = tsignsgd_step_async(params, t, T, o);
    const at::Tensor host = at::stack({d.n_selected, d.n_changed, d.n_guarded, d.grad_norm, d.guard_active}).cpu();
    const double* v = host.data_ptr<double>();
    TSignSgdStats st;
    st.sigma_t = tsignsgd_quantile(t, T, o);
    st.n_selected = static_cast<int64_t>(v[0]);
    st.n_changed = static_cast<int64_t>(v[1]);
    st.n_guarded = static_cast<int64_t>(v[2]);
    st.grad_norm = v[3];
    st.guard_active = v[4] != 0;
    return st;
}

TSignSgdDeviceStats tsignsgd_step_async(const std::vector<TSignSgdParam>& params, int64_t t, int64_t T,
                                        const TSignSgdOptions& o) {
    const double sigma = tsignsgd_quantile(t, T, o);
    check_params(params);
    if (params.empty()) {
        const at::Tensor zero = at::zeros({}, at::kDouble);
        return {zero, zero, zero, zero, zero};
    }
    const at::TensorOptions dev = params[0].grad.options();
    const bool phase2 = static_cast<double>(t) > o.phase1_frac * static_cast<double>(T);
    const float tau_f = float_below(o.tau);

    // Global L2 norm in float64 (the phase-2 guard needs it before any update).
    std::vector<at::Tensor> sq;
    for (const TSignSgdParam& p : params)
        sq.push_back(at::linalg_vector_norm(p.grad, 2, std::nullopt, false, at::kDouble).pow(2));
    const at::Tensor grad_norm = at::stack(sq).sum().sqrt();
    const at::Tensor guard_off = phase2 ? grad_norm.le(o.guard_norm) : at::ones({}, dev.dtype(at::kBool));

    std::vector<at::Tensor> selected, changed, guarded;
    for (const std::vector<size_t>& batch : batches_by_size(params)) {
        const int64_t n = params[batch[0]].grad.numel();
        if (n == 0) continue;
        const at::Tensor g = stack_rows(params, batch, true);  // [m, n] float32
        const at::Tensor mag = g.abs();
        const RowOrder order(mag);
        at::Tensor sel = mag.gt(order.threshold(sigma).clamp_min(tau_f).unsqueeze(1));
        if (phase2) {
            // keep = |g| ≤ θ_guard, or everything while the guard is off (decided on the device).
            const at::Tensor keep = mag.le(order.threshold(o.guard_quantile).unsqueeze(1)).logical_or_(guard_off);
            guarded.push_back(sel.logical_and(keep.logical_not()).sum());
            sel.logical_and_(keep);
        }
        selected.push_back(sel.sum());
        // p ← clamp(p − sign(g), −1, 1) on the selected entries (integers: round() is the identity).
        const at::Tensor p = stack_rows(params, batch, false);  // [m, n] int8
        const at::Tensor step = at::where(sel, g.sign().to(at::kChar), at::zeros({}, p.options()));
        const at::Tensor updated = (p - step).clamp_(-1, 1);
        changed.push_back(updated.ne(p).sum());
        for (size_t i = 0; i < batch.size(); ++i) {
            const at::Tensor& param = params[batch[i]].param;
            param.copy_(updated.select(0, static_cast<int64_t>(i)).view(param.sizes()));
        }
    }
    const auto total = [&](const std::vector<at::Tensor>& v) {
        return v.empty() ? at::zeros({}, dev.dtype(at::kDouble)) : at::stack(v).sum().to(at::kDouble);
    };
    const at::Tensor guard_active = phase2 ? guard_off.logical_not() : at::zeros({}, dev.dtype(at::kBool));
    return {total(selected), total(changed), total(guarded), grad_norm, guard_active.to(at::kDouble)};
}

}  // namespace lota::train
