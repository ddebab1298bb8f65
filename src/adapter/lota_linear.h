// LotaLinear: a GPTQ layer with a LoTA-QAF ternary adapter (DESIGN §1) behind model::Linear.
// Training and inference share one path (Note [LoTA training plan] in adapter/lota_grad.h): the
// adapter is merged into a QuantLinear (codes Q + M, offset F) whenever lora_A/lora_B changed
// (detected through their tensor version counters, so an in-place optimizer step is enough), and
// forward is that QuantLinear's forward. With grad mode on, a tap accumulates ∂L/∂A, ∂L/∂B into
// float32 buffers. The layer keeps the merged codes, one bit a weight for the codes that moved and
// a copy of the merged adapter, not a second copy of the base codes (quant/lota_remerge.h), and
// re-merges without host syncs. Not here: the optimizer (train/optimizer.h) and adapter files (io).
#pragma once

#include <memory>

#include <ATen/core/Tensor.h>

#include "model/linear.h"
#include "model/quant_linear.h"
#include "adapter/lota_grad.h"
#include "quant/lota_remerge.h"
#include "quant/quantized_weight.h"

namespace lota::adapter {

class LotaLinear : public model::Linear {
  public:
    /// base: the quantized layer (no offset; its codes are shared, not copied); a_t = lora_A.weight
    /// int8 [r, K], b_t = lora_B.weight int8 [N, r] (kept by handle, updated in place by the
    /// optimizer); omega = ω > 0. Validates everything here (reads g_idx back once).
    LotaLinear(quant::QuantizedWeight base, at::Tensor a_t, at::Tensor b_t, double omega,
               std::shared_ptr<model::DequantBuffer> buffer = nullptr);
    /// y = x·W'ᵀ (+ bias), W' = S·(Q + M − Z + F); differentiable in x; with grad mode on, the
    /// backward adds to grad_a()/grad_b().
    at::Tensor forward(const at::Tensor& x) override;
    int64_t in_features() const override { return layer_.in_features; }
    int64_t out_features() const override { return layer_.out_features; }
    /// Moves the codes, the adapter and its grad buffers to `device`; bias to `dtype`.
    /// Gradient buffers are zeroed.
    void to(const at::Device& device, at::ScalarType dtype) override;
    std::string kind() const override { return "gptq+lota"; }

    const at::Tensor& lora_a() const { return state_.a_t; }
    const at::Tensor& lora_b() const { return state_.b_t; }
    const at::Tensor& grad_a() const { return state_.grad_a; }
    const at::Tensor& grad_b() const { return state_.grad_b; }
    double omega() const { return state_.omega; }
    int64_t n_groups() const { return layer_.n_groups(); }  ///< G
    void zero_grad() { adapter::lota_train_state_zero_grad(state_); }
    /// The merged layer for the current adapter (pre-merging first if the adapter changed): what
    /// `lota merge` writes, and what this layer's forward runs.
    const model::QuantLinear& merged();
    /// At inference the adapter is fixed: the layer is its merged quantized layer.
    const model::Linear* inference_layer() override { return &merged(); }
    /// Statistics of merged(), float64 [3] on the layer's device: #(M = +1), #(M = −1), Σ|F|.
    /// Not read back here (the trainer reads all layers' at once).
    const at::Tensor& merged_stats();

  private:
    quant::QuantizedWeight layer_;  ///< current merged codes Q' (+ offset F once merged); zeros, scales, g_idx
    quant::LotaMergedCodes codes_;  ///< layer_'s codes Q' and what recovers Q from them (its qweight is layer_'s)
    at::Tensor stats_;
    adapter::LotaTrainState state_;
    std::shared_ptr<model::DequantBuffer> buffer_;
    std::unique_ptr<model::QuantLinear> merged_;
    int64_t a_version_ = -1, b_version_ = -1;  ///< adapter versions merged_ was built from
};

}  // namespace lota::adapter
