// LoRA baseline layer (lora_linear.h).
#include "adapter/lora_linear.h"

#include <cmath>
#include <mutex>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include "util/check.h"

namespace lota::adapter {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// (x ⊙ keep)·Aᵀ with keep a bool dropout mask. Autograd of the same ops would keep both a mask in x's
// dtype and the masked copy of x for every adapted projection; this keeps the byte mask and x (which
// q/k/v and gate/up share) and masks x again in backward.
struct LoraDownFunction : public torch::autograd::Function<LoraDownFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& a, const at::Tensor& keep) {
        ctx->save_for_backward({x, a, keep});
        return at::matmul(x * keep, a.t());
    }
    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &a = saved[1], &keep = saved[2];
        const at::Tensor g = grad_out[0].reshape({-1, a.size(0)});
        at::Tensor grad_x, grad_a;
        if (ctx->needs_input_grad(0)) grad_x = at::mm(g, a).view(x.sizes()).mul_(keep);
        if (ctx->needs_input_grad(1)) grad_a = at::mm(g.t(), (x * keep).reshape({-1, a.size(1)}));
        return {grad_x, grad_a, at::Tensor()};
    }
};

}  // namespace

LoraLinear::LoraLinear(model::LinearPtr base, at::Tensor a, at::Tensor b, double scaling, double dropout)
    : base_(std::move(base)), scaling_(scaling), dropout_(dropout) {
    LOTA_CHECK(base_ != nullptr, "LoraLinear: no base layer");
    LOTA_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == base_->in_features() &&
                   b.size(0) == base_->out_features() && a.size(0) == b.size(1),
               "LoraLinear: lora_A %lldx%lld / lora_B %lldx%lld do not fit a %lld -> %lld layer", (long long)a.size(0),
               (long long)a.size(1), (long long)b.size(0), (long long)b.size(1), (long long)base_->in_features(),
               (long long)base_->out_features());
    LOTA_CHECK(dropout >= 0 && dropout < 1, "LoraLinear: dropout must be in [0, 1), got %g", dropout);
    a_ = a.to(at::kFloat).clone().set_requires_grad(true);
    b_ = b.to(at::kFloat).clone().set_requires_grad(true);
}

at::Tensor LoraLinear::forward(const at::Tensor& x) {
    at::Tensor y = base_->forward(x);
    at::Tensor keep;  // undefined: no dropout
    double scale = scaling_;
    if (dropout_ > 0 && gen_) {
        LOTA_CHECK(gen_->device().type() == x.device().type(),
                   "LoraLinear: the dropout generator is on %s but the input is on %s (use lora_dropout_generator "
                   "with the model's device)",
                   gen_->device().str().c_str(), x.device().str().c_str());
        // Drawn on x's device as bytes, contiguous in x's shape (the same draws as a mask in x's dtype);
        // the 1/(1 − p) of inverted dropout is applied with α/r to the adapter's output.
        keep = at::empty(x.sizes(), x.options().dtype(at::kBool)).bernoulli_(1.0 - dropout_, *gen_);
        scale /= 1.0 - dropout_;
    }
    const at::ScalarType t = x.scalar_type();
    if (frozen_ && (!a_cast_.defined() || a_cast_.scalar_type() != t || a_cast_.device() != a_.device())) {
        a_cast_ = a_.detach().to(t);
        b_cast_ = b_.detach().to(t);
    }
    const at::Tensor a = frozen_ ? a_cast_ : a_.to(t), b = frozen_ ? b_cast_ : b_.to(t);
    const at::Tensor down = keep.defined() ? LoraDownFunction::apply(x, a, keep) : at::matmul(x, a.t());
    const at::Tensor u = at::matmul(down, b.t());
    return y + u * scale;
}

void LoraLinear::to(const at::Device& device, at::ScalarType dtype) {
    base_->to(device, dtype);
    a_ = a_.detach().to(device).set_requires_grad(true);
    b_ = b_.detach().to(device).set_requires_grad(true);
    a_cast_ = b_cast_ = at::Tensor();
}

at::Tensor lora_init_a(int64_t r, int64_t in_features, at::Generator& gen) {
    const double bound = 1.0 / std::sqrt((double)in_features);
    return at::empty({r, in_features}, at::kFloat).uniform_(-bound, bound, gen);
}

at::Generator lora_dropout_generator(const at::Device& device, uint64_t seed) {
    if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
#ifdef LOTA_WITH_CUDA
    if (device.is_cuda()) {
        // A fresh generator, not the device's default one: nothing else advances its Philox offset,
        // so (seed, offset) and thus the masks depend only on this step's draws.
        at::Generator gen = at::cuda::detail::createCUDAGenerator(device.index());
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_current_seed(seed);  // also resets the Philox offset to 0
        return gen;
    }
#endif
    LOTA_FAIL("LoRA dropout: no generator for device %s in this build of lota", device.str().c_str());
}

}  // namespace lota::adapter
