// QaLoraLinear (see qalora_linear.h).
#include "adapter/qalora_linear.h"

#include <ATen/ATen.h>

#include "util/check.h"
#include "util/strfmt.h"

namespace lota::adapter {

QaLoraLinear::QaLoraLinear(quant::QuantizedWeight base, at::Tensor a, at::Tensor b, double scaling,
                           quant::QaLoraPooling pooling, std::shared_ptr<model::DequantBuffer> buffer)
    : layer_(std::move(base)), scaling_(scaling), pooling_(pooling), buffer_(std::move(buffer)) {
    quant::quantized_weight_check(layer_, "QaLoraLinear");
    quant::qalora_check_layer(layer_, "QaLoraLinear");
    LOTA_CHECK(a.defined() && b.defined() && a.dim() == 2 && b.dim() == 2 && a.size(1) == layer_.n_groups() &&
                   b.size(0) == layer_.out_features && a.size(0) == b.size(1),
               "QaLoraLinear: lora_A.weight %s / lora_B.weight %s do not fit a %lld -> %lld layer of group size %d "
               "(expected [r, %lld] and [%lld, r])",
               a.defined() ? shape_str(a.sizes().vec()).c_str() : "(undefined)",
               b.defined() ? shape_str(b.sizes().vec()).c_str() : "(undefined)", (long long)layer_.in_features,
               (long long)layer_.out_features, layer_.group_size, (long long)layer_.n_groups(),
               (long long)layer_.out_features);
    const at::Device dev = layer_.qweight.device();
    a_ = a.to(dev, at::kFloat).clone().set_requires_grad(true);
    b_ = b.to(dev, at::kFloat).clone().set_requires_grad(true);
}

const model::QuantLinear& QaLoraLinear::merged() {
    const int64_t av = a_._version(), bv = b_._version();
    if (!merged_ || av != a_version_ || bv != b_version_) {
        at::NoGradGuard no_grad;
        layer_.offset = quant::qalora_offset(a_, b_, layer_.scales, scaling_, pooling_, layer_.group_size);
        offset_abs_sum_ = layer_.offset.abs().sum(at::kDouble);
        merged_ = std::make_unique<model::QuantLinear>(layer_, buffer_);
        a_version_ = av;
        b_version_ = bv;
    }
    return *merged_;
}

const at::Tensor& QaLoraLinear::offset_abs_sum() {
    merged();
    return offset_abs_sum_;
}

// Note [QA-LoRA gradient path]
// The forward value is the merged layer's, x·S·(Q − Z + F(A, B)), so that training, `lota eval --adapter`
// and the merged checkpoint compute the same numbers. F is built without autograd, so A and B get their
// gradients from the pooled formula z = s·pool(x)·Aᵀ·Bᵀ, which is the adapter's contribution to y in exact
// arithmetic: y + (z − detach(z)) adds exactly 0 to the value (z − z is +0 for finite z) and z's gradient
// to A and B. pool takes detach(x): ∂L/∂x already comes through the merged weight W', which contains the
// adapter, and must not count it twice. Cost: two thin GEMMs ([T, K/g]·[K/g, r] and [T, r]·[r, N]) next to
// the layer's [T, K]·[K, N], the same as the official code's unmerged adapter branch.
at::Tensor QaLoraLinear::forward(const at::Tensor& x) {
    merged();
    const at::Tensor y = merged_->forward(x);
    if (!at::GradMode::is_enabled() || !(a_.requires_grad() || b_.requires_grad())) return y;
    const at::ScalarType t = x.scalar_type();
    const at::Tensor p = quant::qalora_pool(x.detach(), layer_.group_size, pooling_);
    const at::Tensor z = at::matmul(at::matmul(p, a_.to(t).t()), b_.to(t).t()) * scaling_;
    return y + (z - z.detach());
}

void QaLoraLinear::to(const at::Device& device, at::ScalarType dtype) {
    layer_.offset = at::Tensor();
    model::QuantLinear moved(layer_);
    moved.to(device, dtype);
    layer_ = moved.weight();
    a_ = a_.detach().to(device).set_requires_grad(true);
    b_ = b_.detach().to(device).set_requires_grad(true);
    merged_.reset();  // the next forward re-merges on the new device
}

}  // namespace lota::adapter
