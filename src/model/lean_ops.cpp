// Autograd functions of lean_ops.h.
#include "model/lean_ops.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/silu_mul.h"
#include "util/check.h"

namespace lota::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps) {
        ctx->save_for_backward({x, w});
        ctx->saved_data["eps"] = eps;
        return kernels::rms_norm(x, w, eps);  // autograd is off inside forward: the fused kernel on CUDA
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const variable_list saved = ctx->get_saved_variables();
        const double eps = ctx->saved_data["eps"].toDouble();
        return {kernels::rms_norm_backward(saved[0], saved[1], grad_out[0], eps), at::Tensor(), at::Tensor()};
    }
};

struct SiluMulFunction : public torch::autograd::Function<SiluMulFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
        ctx->save_for_backward({gate, up});
        return kernels::silu_mul(gate, up);  // grad mode is off here: the inference kernel, the same values
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const variable_list saved = ctx->get_saved_variables();
        const at::Tensor &gate = saved[0], &up = saved[1];
        const at::Tensor& g = grad_out[0];
        // In place where a temporary would be: at this point of a block's backward these [tokens,
        // intermediate] tensors are the peak of training memory. Same values as g·silu(gate) and
        // silu_backward(g·up, gate) (products commute; the backward is elementwise).
        at::Tensor d_up = at::silu(gate).mul_(g);
        at::Tensor d_gate = g * up;
        at::silu_backward_out(d_gate, d_gate, gate);
        return {d_gate, d_up};
    }
};

// A rotation's gradient is the rotation back: with cos and sin the same in both halves of the last
// dimension, autograd of x·cos + rotate_half(x)·sin is g·cos − rotate_half(g·sin) = rope(g, cos, −sin).
struct RopeFunction : public torch::autograd::Function<RopeFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
        ctx->save_for_backward({cos, sin});
        return kernels::rope_rotate(x, cos, sin);
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const variable_list saved = ctx->get_saved_variables();
        return {kernels::rope_rotate(grad_out[0], saved[0], saved[1].neg()), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor rope_lean(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    LOTA_CHECK(!(cos.requires_grad() || sin.requires_grad()), "rope_lean: cos and sin must be constants");
    return RopeFunction::apply(x, cos, sin);
}

at::Tensor rms_norm_lean(const at::Tensor& x, const at::Tensor& w, double eps) {
    LOTA_CHECK(!(w.defined() && w.requires_grad()), "rms_norm_lean: the norm weight must be frozen");
    return RmsNormFunction::apply(x, w, eps);
}

at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up) {
    // kernels::silu_mul checks the shapes, on either path (the autograd function's forward calls it).
    if (!at::GradMode::is_enabled() || !(gate.requires_grad() || up.requires_grad()))
        return kernels::silu_mul(gate, up);  // one kernel on CUDA
    return SiluMulFunction::apply(gate, up);
}

}  // namespace lota::model
