// LotaLinear (see lota_linear.h).
#include "model/lota_linear.h"

#include <ATen/ATen.h>

#include "quant/lota_merge.h"
#include "util/check.h"

namespace lota::model {

LotaLinear::LotaLinear(quant::QuantizedWeight base, at::Tensor a_t, at::Tensor b_t, double omega,
                       std::shared_ptr<DequantBuffer> buffer)
    : base_(std::move(base)), buffer_(std::move(buffer)) {
    quant::quantized_weight_check(base_, "LotaLinear");
    LOTA_CHECK(!base_.offset.defined(), "LotaLinear: the base layer already carries a LoTA offset (a merged model)");
    state_ = quant::lota_train_state_init(std::move(a_t), std::move(b_t), base_.scales, base_.g_idx, base_.n_groups(),
                                          omega);
    LOTA_CHECK(state_.a_t.size(1) == base_.in_features && state_.b_t.size(0) == base_.out_features,
               "LotaLinear: adapter lora_A.weight %s / lora_B.weight %s does not fit in=%lld, out=%lld",
               shape_str(state_.a_t.sizes().vec()).c_str(), shape_str(state_.b_t.sizes().vec()).c_str(),
               (long long)base_.in_features, (long long)base_.out_features);
}

const QuantLinear& LotaLinear::merged() {
    const int64_t av = state_.a_t._version(), bv = state_.b_t._version();
    if (!merged_ || av != a_version_ || bv != b_version_) {
        at::NoGradGuard no_grad;
        merged_ = std::make_unique<QuantLinear>(quant::lota_merge(base_, state_.a_t, state_.b_t, state_.omega), buffer_);
        a_version_ = av;
        b_version_ = bv;
    }
    return *merged_;
}

at::Tensor LotaLinear::forward(const at::Tensor& x) {
    merged();
    const at::Tensor y = merged_->forward(x);
    return at::GradMode::is_enabled() ? quant::lota_grad_tap(y, x, state_) : y;
}

void LotaLinear::to(const at::Device& device, at::ScalarType dtype) {
    QuantLinear moved(base_);
    moved.to(device, dtype);
    base_ = moved.weight();
    state_ = quant::lota_train_state_init(state_.a_t.to(device), state_.b_t.to(device), base_.scales, base_.g_idx,
                                          base_.n_groups(), state_.omega);
    merged_.reset();
}

}  // namespace lota::model
