// t-SignSGD (ternary signed gradient descent) for LoTA-QAF adapters (DESIGN §1; Chen et al. 2025,
// arXiv 2505.18724). The rule here is stateless: no learning rate, no momentum, no clipping. At step
// t of T each ternary tensor p moves one step against sign(grad) where |grad| is above the per-tensor
// quantile θ_t = quantile(|grad|, q_t) and above τ, and stays in {−1, 0, 1}. Zeroing the gradient
// buffers after a step is the caller's job (TSignSgdOptimizer, train/optimizer.h), and so is the one
// optional state, the gradient moving average of TSignSgdOptions::momentum, which that class keeps
// and hands to this rule in place of the gradient.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::train {

/// How q_t behaves after phase 1.
enum class TSignSchedule {
    OFFICIAL_INTERPOLATE,  ///< official code: q_mid → q_end linearly over phase 2
    PAPER_FIXED_LAST,      ///< paper text: q_end (0.01%) fixed for the whole phase 2
};

struct TSignSgdOptions {
    double q_start = 0.95;        ///< quantile level at t = 0 (top 5% move)
    double q_mid = 0.999;         ///< level at the end of phase 1, t = phase1_frac·T (top 0.1%)
    double q_end = 0.9999;        ///< level at t ≥ T (top 0.01%)
    double phase1_frac = 0.8;     ///< phase 1 is t ≤ phase1_frac·T
    double tau = 1e-9;            ///< |g| must also exceed τ (so zero gradients never move)
    TSignSchedule schedule = TSignSchedule::OFFICIAL_INTERPOLATE;
    double guard_norm = 10.0;     ///< phase 2: guard active when the global grad L2 norm exceeds this
    double guard_quantile = 0.99995;  ///< guard skips entries with |g| above this per-tensor quantile
    /// β in [0, 1) of TSignSgdOptimizer (not of tsignsgd_step): each step first updates
    /// m ← β·m + (1 − β)·g (m = 0 before step 1) and then runs the rule on m instead of g. 0 (the
    /// default) is the paper's t-SignSGD exactly; the adapter stays ternary either way.
    double momentum = 0.0;
};

/// One adapter tensor and its accumulated gradient.
struct TSignSgdParam {
    at::Tensor param;  ///< int8, values in {−1, 0, 1}; updated in place
    at::Tensor grad;   ///< float32, same shape and device as param
};

struct TSignSgdStats {
    double sigma_t = 0;        ///< quantile level q_t used at this step
    int64_t n_selected = 0;    ///< entries that passed every threshold (moved unless clamped at ±1)
    int64_t n_changed = 0;     ///< entries whose value actually changed
    int64_t n_guarded = 0;     ///< entries above θ_t and τ skipped by the phase-2 guard
    double grad_norm = 0;      ///< global L2 norm over all gradients (float64 accumulation)
    bool guard_active = false;
};

/// Quantile level q_t for step t of T (t counts optimizer steps from 1; t ≥ T gives q_end).
/// Throws on T < 1, t < 0 or options outside [0, 1].
double tsignsgd_quantile(int64_t t, int64_t T, const TSignSgdOptions& options = {});

/// Exact q-quantile of all elements of x with torch.quantile's linear interpolation (position
/// q·(n−1), computed in float64), found with kthvalue (no size limit, no sampling). x float.
double tsignsgd_exact_quantile(const at::Tensor& x, double q);

/// One optimizer step over all adapter tensors (see file comment and DESIGN §1). Returns stats
/// (reads them back: one host sync).
TSignSgdStats tsignsgd_step(const std::vector<TSignSgdParam>& params, int64_t t, int64_t T,
                            const TSignSgdOptions& options = {});

/// The statistics of tsignsgd_step_async, still on the device: float64 0-d tensors.
struct TSignSgdDeviceStats {
    at::Tensor n_selected, n_changed, n_guarded;  ///< counts (exact integers)
    at::Tensor grad_norm;                         ///< global L2 norm
    at::Tensor guard_active;                      ///< 1 or 0
};

/// The same step without any host sync (all parameters on one device), so a caller can read the
/// statistics back together with its other per-step values.
TSignSgdDeviceStats tsignsgd_step_async(const std::vector<TSignSgdParam>& params, int64_t t, int64_t T,
                                        const TSignSgdOptions& options = {});

}  // namespace lota::train
