// Chunked LM-head cross-entropy (see lm_loss.h). Per chunk of n rows, with x = logits in float32:
//   forward:  lse = max(x) + log Σ exp(x − max(x)),  loss_i = lse_i − x[target_i]
//   backward: ∂L/∂x = g·(exp(x − lse) − onehot(target)) on target rows, 0 on ignored rows,
//             ∂L/∂h = (∂L/∂x in the compute dtype)·W   (as autograd of linear + .to(float32) gives)
// Only lse [M] (float32) is kept between forward and backward.
#include "train/lm_loss.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "util/check.h"

namespace lota::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kIgnoreIndex = -100;

at::Tensor chunk_logits(const at::Tensor& h, const at::Tensor& weight, int64_t i0, int64_t n) {
    return at::linear(h.narrow(0, i0, n), weight).to(at::kFloat);  // [n, V], a fresh tensor either way
}

struct LmLossFunction : public torch::autograd::Function<LmLossFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& weight,
                              const at::Tensor& targets, int64_t chunk_rows) {
        const int64_t M = h.size(0);
        const at::Tensor valid = targets.ne(kIgnoreIndex);
        const at::Tensor safe = targets.masked_fill(valid.logical_not(), 0);  // any in-range index
        at::Tensor lse = at::empty({M}, h.options().dtype(at::kFloat));
        std::vector<at::Tensor> partial;
        for (int64_t i0 = 0; i0 < M; i0 += chunk_rows) {
            const int64_t n = std::min(chunk_rows, M - i0);
            at::Tensor x = chunk_logits(h, weight, i0, n);
            const at::Tensor x_t = x.gather(1, safe.narrow(0, i0, n).unsqueeze(1)).squeeze(1);
            const at::Tensor m = std::get<0>(x.max(1, true));
            const at::Tensor l = x.sub_(m).exp_().sum(1).log_().add_(m.squeeze(1));
            lse.narrow(0, i0, n).copy_(l);
            partial.push_back(at::where(valid.narrow(0, i0, n), l - x_t, at::zeros({}, l.options())).sum());
        }
        ctx->save_for_backward({h, weight, safe, valid, lse});
        ctx->saved_data["chunk_rows"] = chunk_rows;
        return partial.empty() ? at::zeros({}, h.options().dtype(at::kFloat)) : at::stack(partial).sum();
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const variable_list saved = ctx->get_saved_variables();
        const at::Tensor &h = saved[0], &weight = saved[1], &safe = saved[2], &valid = saved[3], &lse = saved[4];
        const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
        const at::Tensor g = grad_out[0].to(at::kFloat);  // 0-dim, stays on the device
        const int64_t M = h.size(0);
        at::Tensor dh = at::empty_like(h);
        for (int64_t i0 = 0; i0 < M; i0 += chunk_rows) {
            const int64_t n = std::min(chunk_rows, M - i0);
            at::Tensor p = chunk_logits(h, weight, i0, n).sub_(lse.narrow(0, i0, n).unsqueeze(1)).exp_();  // softmax
            const at::Tensor idx = safe.narrow(0, i0, n).unsqueeze(1);
            p.scatter_add_(1, idx, at::full({n, 1}, -1.0f, p.options()));  // − onehot(target)
            p.mul_(at::where(valid.narrow(0, i0, n), g, at::zeros({}, g.options())).unsqueeze(1));
            at::Tensor dh_rows = dh.narrow(0, i0, n);  // contiguous rows of dh
            at::mm_out(dh_rows, p.to(h.scalar_type()), weight);
        }
        return {dh, at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor lm_loss_sum(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk_rows) {
    LOTA_CHECK(h.defined() && h.dim() == 2 && weight.defined() && weight.dim() == 2 && weight.size(1) == h.size(1),
               "lm_loss_sum: expected h [M, C] and weight [V, C], got %s and %s",
               h.defined() ? shape_str(h.sizes().vec()).c_str() : "(undefined)",
               weight.defined() ? shape_str(weight.sizes().vec()).c_str() : "(undefined)");
    LOTA_CHECK(h.scalar_type() == weight.scalar_type() && h.device() == weight.device(),
               "lm_loss_sum: h (%s on %s) and weight (%s on %s) must share dtype and device",
               c10::toString(h.scalar_type()), h.device().str().c_str(), c10::toString(weight.scalar_type()),
               weight.device().str().c_str());
    LOTA_CHECK(targets.defined() && targets.dim() == 1 && targets.size(0) == h.size(0) &&
                   targets.scalar_type() == at::kLong && targets.device() == h.device(),
               "lm_loss_sum: targets must be int64 [%lld] on %s", static_cast<long long>(h.size(0)),
               h.device().str().c_str());
    LOTA_CHECK(chunk_rows >= 1, "lm_loss_sum: chunk_rows must be >= 1, got %lld", static_cast<long long>(chunk_rows));
    LOTA_CHECK(!weight.requires_grad(), "lm_loss_sum: the LM head weight is frozen here (it requires grad)");
    return LmLossFunction::apply(h, weight, targets, chunk_rows);
}

}  // namespace lota::train
