// QaLoraLinear: a GPTQ layer with a QA-LoRA adapter (Xu et al., ICLR 2024; Note [QA-LoRA pooling and
// merge] in quant/qalora.h) behind model::Linear: y = x·W + s·pool(x)·Aᵀ·Bᵀ, A [r, K/g] and B [N, r]
// float32 leaves (AdamW updates them in place), s = α/r. Like LotaLinear, training and inference share
// the merged layer: the adapter is folded into the per-group offset F (quant::qalora_offset) whenever A or
// B changed (tensor version counters), and forward is that QuantLinear's forward, so a trained adapter
// and `lota merge`'s output give the same logits bit for bit. Gradients to A and B come from the pooled
// formula (Note [QA-LoRA gradient path] in qalora_linear.cpp). No dropout: the merged forward has none.
// Not here: the optimizer (train/), adapter files (io/adapter.h).
#pragma once

#include <memory>

#include <ATen/core/Tensor.h>

#include "model/linear.h"
#include "model/quant_linear.h"
#include "quant/qalora.h"
#include "quant/quantized_weight.h"

namespace lota::adapter {

class QaLoraLinear : public model::Linear {
  public:
    /// base: the quantized layer (group-wise, contiguous groups, no offset: quant::qalora_check_layer);
    /// a [r, K/g], b [N, r] (any float type; made float32 leaves with requires_grad on base's device);
    /// scaling = α/r. Throws lota::Error when the layer or the shapes do not fit.
    QaLoraLinear(quant::QuantizedWeight base, at::Tensor a, at::Tensor b, double scaling, quant::QaLoraPooling pooling,
                 std::shared_ptr<model::DequantBuffer> buffer = nullptr);
    /// y = x·W'ᵀ (+ bias), W' = S·(Q − Z + F); differentiable in x, and in A and B while grad mode is on.
    at::Tensor forward(const at::Tensor& x) override;
    int64_t in_features() const override { return layer_.in_features; }
    int64_t out_features() const override { return layer_.out_features; }
    /// Moves the codes and the adapter to `device` (A, B stay float32 leaves); bias to `dtype`.
    void to(const at::Device& device, at::ScalarType dtype) override;
    std::string kind() const override { return "gptq+qalora"; }

    at::Tensor& lora_a() { return a_; }
    at::Tensor& lora_b() { return b_; }
    int64_t n_groups() const { return layer_.n_groups(); }  ///< G = K/g
    /// The merged layer for the current adapter (re-merged first if A or B changed): what `lota merge`
    /// writes and what forward runs.
    const model::QuantLinear& merged();
    /// At inference the adapter is fixed: the layer is its merged quantized layer.
    const model::Linear* inference_layer() override { return &merged(); }
    /// Σ|F| of merged(), a float64 scalar on the layer's device (not read back here).
    const at::Tensor& offset_abs_sum();

  private:
    quant::QuantizedWeight layer_;  ///< base codes, zeros, scales, g_idx; offset F once merged
    at::Tensor a_, b_;
    double scaling_;
    quant::QaLoraPooling pooling_;
    std::shared_ptr<model::DequantBuffer> buffer_;
    std::unique_ptr<model::QuantLinear> merged_;
    at::Tensor offset_abs_sum_;
    int64_t a_version_ = -1, b_version_ = -1;  ///< adapter versions merged_ was built from
};

}  // namespace lota::adapter
