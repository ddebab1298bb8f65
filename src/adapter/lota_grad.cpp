// Autograd glue for LoTA-QAF training (see lota_grad.h, Note [LoTA training plan]). Two custom
// autograd functions: a tap (identity on y, backward accumulates adapter grads) and a dense
// reference linear. The state is stored in the autograd context as plain tensors and numbers.
#include "adapter/lota_grad.h"

#include <optional>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "quant/lota.h"
#include "util/check.h"

namespace lota::adapter {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void save_state(AutogradContext* ctx, const LotaTrainState& s) {
    ctx->saved_data["a_t"] = s.a_t;
    ctx->saved_data["b_t"] = s.b_t;
    ctx->saved_data["grad_a"] = s.grad_a;
    ctx->saved_data["grad_b"] = s.grad_b;
    ctx->saved_data["scales"] = s.scales;
    ctx->saved_data["g_idx"] = s.g_idx;
    ctx->saved_data["n_groups"] = s.n_groups;
    ctx->saved_data["group_rows"] = s.groups.rows;
    if (s.groups.perm.defined()) ctx->saved_data["group_perm"] = s.groups.perm;
    ctx->saved_data["omega"] = s.omega;
    if (s.ready) ctx->saved_data["ready"] = c10::IValue::make_capsule(s.ready);
}

LotaTrainState load_state(AutogradContext* ctx) {
    LotaTrainState s;
    s.a_t = ctx->saved_data["a_t"].toTensor();
    s.b_t = ctx->saved_data["b_t"].toTensor();
    s.grad_a = ctx->saved_data["grad_a"].toTensor();
    s.grad_b = ctx->saved_data["grad_b"].toTensor();
    s.scales = ctx->saved_data["scales"].toTensor();
    s.g_idx = ctx->saved_data["g_idx"].toTensor();
    s.n_groups = ctx->saved_data["n_groups"].toInt();
    s.groups.n_groups = s.n_groups;
    s.groups.rows = ctx->saved_data["group_rows"].toInt();
    if (ctx->saved_data.count("group_perm")) s.groups.perm = ctx->saved_data["group_perm"].toTensor();
    s.omega = ctx->saved_data["omega"].toDouble();
    if (ctx->saved_data.count("ready"))
        s.ready = c10::static_intrusive_pointer_cast<GradReadyHook>(ctx->saved_data["ready"].toCapsule());
    return s;
}

void check_state(const LotaTrainState& s) {
    LOTA_CHECK(s.grad_a.defined() && s.grad_b.defined() && s.anchor.defined(),
               "LoTA: training state is not initialised (use lota_train_state_init)");
}

struct LotaTapFunction : public torch::autograd::Function<LotaTapFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& x, const at::Tensor& anchor,
                              const LotaTrainState& state) {
        ctx->save_for_backward({x});
        save_state(ctx, state);
        return y;  // returned input: autograd wraps it in a view carrying this node
    }
    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const at::Tensor& dy = grad_out[0];
        if (dy.defined()) lota_accumulate_grads(load_state(ctx), ctx->get_saved_variables()[0], dy);
        return {dy, at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

struct LotaLinearFunction : public torch::autograd::Function<LotaLinearFunction> {
    // bias is optional because autograd inputs must be defined tensors.
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w_hat,
                              const std::optional<at::Tensor>& bias, const at::Tensor& anchor,
                              const LotaTrainState& state) {
        ctx->save_for_backward({x, w_hat});
        save_state(ctx, state);
        return bias ? at::linear(x, w_hat, *bias) : at::linear(x, w_hat);
    }
    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const at::Tensor& dy = grad_out[0];
        const variable_list saved = ctx->get_saved_variables();
        at::Tensor dx;
        if (dy.defined()) {
            if (ctx->needs_input_grad(0)) dx = at::matmul(dy, saved[1]);
            lota_accumulate_grads(load_state(ctx), saved[0], dy);
        }
        return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

LotaTrainState lota_train_state_init(at::Tensor a_t, at::Tensor b_t, at::Tensor scales, at::Tensor g_idx,
                                     int64_t n_groups, double omega) {
    LOTA_CHECK(a_t.defined() && b_t.defined() && a_t.dim() == 2 && b_t.dim() == 2,
               "LoTA: lora_A.weight and lora_B.weight must be 2-D");
    LOTA_CHECK(scales.defined() && scales.dim() == 2 && scales.size(0) == n_groups && scales.size(1) == b_t.size(0),
               "LoTA: scales must be [G, N] = [%lld, %lld]", static_cast<long long>(n_groups),
               static_cast<long long>(b_t.size(0)));
    LOTA_CHECK(g_idx.defined() && g_idx.dim() == 1 && g_idx.size(0) == a_t.size(1), "LoTA: g_idx must be [K] = [%lld]",
               static_cast<long long>(a_t.size(1)));
    LotaTrainState s;
    s.groups = quant::lota_groups_make(g_idx, n_groups);
    quant::lota_delta_w(a_t.narrow(1, 0, 0), b_t);  // dtype and rank checks only (empty product)
    s.grad_a = at::zeros(a_t.sizes(), a_t.options().dtype(at::kFloat));
    s.grad_b = at::zeros(b_t.sizes(), b_t.options().dtype(at::kFloat));
    s.anchor = at::zeros({}, a_t.options().dtype(at::kFloat)).requires_grad_(true);
    s.a_t = std::move(a_t);
    s.b_t = std::move(b_t);
    s.scales = std::move(scales);
    s.g_idx = std::move(g_idx);
    s.n_groups = n_groups;
    s.omega = omega;
    return s;
}

void lota_train_state_zero_grad(LotaTrainState& state) {
    check_state(state);
    state.grad_a.zero_();
    state.grad_b.zero_();
}

void lota_accumulate_grads(const LotaTrainState& state, const at::Tensor& x, const at::Tensor& dy) {
    const int64_t K = x.size(-1), N = dy.size(-1);
    LOTA_CHECK(x.numel() / K == dy.numel() / N, "LoTA: x %s and dL/dy %s disagree on the number of rows",
               shape_str(x.sizes().vec()).c_str(), shape_str(dy.sizes().vec()).c_str());
    if (x.is_cpu() && quant::lota_backward_from_inputs_pays(state.groups, state.a_t.size(0), K)) {
        // Small ranks on the CPU: the gradients without the K×N product (fewer FLOPs when 2·r < g).
        const quant::LotaGrads g = quant::lota_backward_from_inputs(x, dy, state.scales, state.groups, state.omega,
                                                                    state.a_t, state.b_t);
        state.grad_a.add_(g.a_t);
        state.grad_b.add_(g.b_t);
        if (state.ready) state.ready->fn();
        return;
    }
    // Gw = xᵀ·∂y: the one full K×N GEMM training adds (DESIGN §1). On CUDA a 16-bit Gw stays 16-bit
    // (Note [16-bit adapter gradients] in lota.cpp); elsewhere the backward works in float32.
    at::Tensor gw = at::mm(x.reshape({-1, K}).t(), dy.reshape({-1, N}).to(x.scalar_type()));
    const bool keep_16 = gw.is_cuda() && (gw.scalar_type() == at::kBFloat16 || gw.scalar_type() == at::kHalf);
    if (gw.scalar_type() != at::kFloat && !keep_16) gw = gw.to(at::kFloat);
    // gw is ours: lota_backward may scale it in place instead of copying it.
    const quant::LotaGrads g =
        quant::lota_backward(gw, state.scales, state.groups, state.omega, state.a_t, state.b_t, true);
    state.grad_a.add_(g.a_t);
    state.grad_b.add_(g.b_t);
    if (state.ready) state.ready->fn();
}

at::Tensor lota_grad_tap(const at::Tensor& y, const at::Tensor& x, const LotaTrainState& state) {
    check_state(state);
    return LotaTapFunction::apply(y, x, state.anchor, state);
}

at::Tensor lota_linear(const at::Tensor& x, const at::Tensor& w_hat, const at::Tensor& bias,
                       const LotaTrainState& state) {
    check_state(state);
    LOTA_CHECK(w_hat.dim() == 2 && x.size(-1) == w_hat.size(1), "LoTA: w_hat %s must be [N, K] with K = x's last dim %lld",
               shape_str(w_hat.sizes().vec()).c_str(), static_cast<long long>(x.size(-1)));
    const std::optional<at::Tensor> b = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
    return LotaLinearFunction::apply(x, w_hat, b, state.anchor, state);
}

}  // namespace lota::adapter
