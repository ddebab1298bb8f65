// LoRA baseline layer (lora_linear.h).
#include "train/lora_linear.h"

#include <cmath>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::train {

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
    at::Tensor h = x;
    if (dropout_ > 0 && gen_) {
        // Masks are drawn on the CPU (the generator is a CPU one) so runs reproduce on any device.
        const at::Tensor keep = at::empty(x.sizes(), at::kFloat).bernoulli_(1.0 - dropout_, *gen_);
        h = x * keep.to(x.device(), x.scalar_type()) * (1.0 / (1.0 - dropout_));
    }
    const at::Tensor u = at::matmul(at::matmul(h, a_.to(x.scalar_type()).t()), b_.to(x.scalar_type()).t());
    return y + u * scaling_;
}

void LoraLinear::to(const at::Device& device, at::ScalarType dtype) {
    base_->to(device, dtype);
    a_ = a_.detach().to(device).set_requires_grad(true);
    b_ = b_.detach().to(device).set_requires_grad(true);
}

at::Tensor lora_init_a(int64_t r, int64_t in_features, at::Generator& gen) {
    const double bound = 1.0 / std::sqrt((double)in_features);
    return at::empty({r, in_features}, at::kFloat).uniform_(-bound, bound, gen);
}

}  // namespace lota::train
