// AdamW, LR schedule and gradient clipping (adamw.h).
#include "train/adamw.h"

#include <cmath>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::train {

double adamw_lr(const AdamWOptions& o, int64_t t, int64_t T) {
    LOTA_CHECK(o.schedule == "constant" || o.schedule == "cosine", "unknown lr schedule '%s' (constant or cosine)",
               o.schedule.c_str());
    const double warm = std::ceil(o.warmup_ratio * (double)T);
    if (warm > 0 && (double)t <= warm) return o.lr * (double)t / warm;
    if (o.schedule == "constant") return o.lr;
    const double span = std::max(1.0, (double)T - warm);
    const double progress = std::min(1.0, ((double)t - warm) / span);
    return o.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

double adamw_step(const std::vector<at::Tensor>& params, AdamWState& s, const AdamWOptions& o, double lr) {
    at::NoGradGuard no_grad;
    double sq = 0;
    for (const auto& p : params)
        if (p.grad().defined()) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    // A non-finite gradient changes nothing: the trainer stops on it, and the adapter stays as this
    // step's forward saw it, so the tensor that went non-finite first can still be found.
    if (!std::isfinite(norm)) return norm;
    const double clip = (o.max_grad_norm > 0 && norm > o.max_grad_norm) ? o.max_grad_norm / (norm + 1e-6) : 1.0;
    if (s.m.empty())
        for (const auto& p : params) {
            s.m.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
            s.v.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
        }
    LOTA_CHECK(s.m.size() == params.size(), "AdamW state holds %zu tensors, expected %zu", s.m.size(), params.size());
    ++s.step;
    const double bc1 = 1.0 - std::pow(o.beta1, (double)s.step), bc2 = 1.0 - std::pow(o.beta2, (double)s.step);
    for (size_t i = 0; i < params.size(); ++i) {
        const at::Tensor& p = params[i];
        if (!p.grad().defined()) continue;
        const at::Tensor g = clip == 1.0 ? p.grad().to(at::kFloat) : p.grad().to(at::kFloat) * clip;
        if (o.weight_decay != 0) p.mul_(1.0 - lr * o.weight_decay);
        s.m[i].mul_(o.beta1).add_(g, 1.0 - o.beta1);
        s.v[i].mul_(o.beta2).addcmul_(g, g, 1.0 - o.beta2);
        const at::Tensor denom = (s.v[i].sqrt() / std::sqrt(bc2)).add_(o.eps);
        p.addcdiv_(s.m[i], denom, -lr / bc1);
    }
    return norm;
}

}  // namespace lota::train
