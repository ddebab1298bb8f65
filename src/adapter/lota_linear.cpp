// LotaLinear (see lota_linear.h).
#include "adapter/lota_linear.h"

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::adapter {

LotaLinear::LotaLinear(quant::QuantizedWeight base, at::Tensor a_t, at::Tensor b_t, double omega,
                       std::shared_ptr<model::DequantBuffer> buffer)
    : layer_(std::move(base)), buffer_(std::move(buffer)) {
    quant::quantized_weight_check(layer_, "LotaLinear");
    LOTA_CHECK(!layer_.offset.defined(), "LotaLinear: the base layer already carries a LoTA offset (a merged model)");
    state_ = lota_train_state_init(std::move(a_t), std::move(b_t), layer_.scales, layer_.g_idx,
                                          layer_.n_groups(), omega);
    LOTA_CHECK(state_.a_t.size(1) == layer_.in_features && state_.b_t.size(0) == layer_.out_features,
               "LotaLinear: adapter lora_A.weight %s / lora_B.weight %s does not fit in=%lld, out=%lld",
               shape_str(state_.a_t.sizes().vec()).c_str(), shape_str(state_.b_t.sizes().vec()).c_str(),
               (long long)layer_.in_features, (long long)layer_.out_features);
    codes_ = quant::lota_merged_codes_init(layer_);
}

const model::QuantLinear& LotaLinear::merged() {
    const int64_t av = state_.a_t._version(), bv = state_.b_t._version();
    if (!merged_ || av != a_version_ || bv != b_version_) {
        at::NoGradGuard no_grad;
        const quant::LotaRemerged r =
            quant::lota_remerge(codes_, layer_, state_.groups, state_.a_t, state_.b_t, state_.omega);
        codes_ = r.codes;
        layer_.qweight = codes_.qweight;
        layer_.offset = r.offset;
        stats_ = r.stats;
        merged_ = std::make_unique<model::QuantLinear>(layer_, buffer_);
        a_version_ = av;
        b_version_ = bv;
    }
    return *merged_;
}

const at::Tensor& LotaLinear::merged_stats() {
    merged();
    return stats_;
}

at::Tensor LotaLinear::forward(const at::Tensor& x) {
    merged();
    const at::Tensor y = merged_->forward(x);
    return at::GradMode::is_enabled() ? lota_grad_tap(y, x, state_) : y;
}

void LotaLinear::to(const at::Device& device, at::ScalarType dtype) {
    model::QuantLinear moved(layer_);
    moved.to(device, dtype);
    layer_ = moved.weight();
    codes_.qweight = layer_.qweight;
    codes_.moved = codes_.moved.to(device);
    if (codes_.a_t.defined()) {
        codes_.a_t = codes_.a_t.to(device);
        codes_.b_t = codes_.b_t.to(device);
    }
    state_ = lota_train_state_init(state_.a_t.to(device), state_.b_t.to(device), layer_.scales, layer_.g_idx,
                                          layer_.n_groups(), state_.omega);
    merged_.reset();  // the next forward re-merges from the moved codes (same result)
}

}  // namespace lota::adapter
