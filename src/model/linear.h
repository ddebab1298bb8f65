// Linear layer variants behind one interface: dense (16/32-bit weights), quantized (GPTQ
// codes), and quantized + adapter (LoRA, LoTA). Shapes follow HF/PyTorch: x [..., K] -> y [..., N].
// The quantized variants store DESIGN §1's K×N codes; only forward() is shared.
#pragma once

#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

namespace lota::model {

class Linear {
  public:
    virtual ~Linear() = default;
    /// y = x·Wᵀ (+ bias); x [..., K] of the compute dtype, returns [..., N]. Differentiable in x.
    virtual at::Tensor forward(const at::Tensor& x) = 0;
    virtual int64_t in_features() const = 0;
    virtual int64_t out_features() const = 0;
    /// Moves parameters to `device`; floating-point parameters to `dtype` (codes stay integer).
    virtual void to(const at::Device& device, at::ScalarType dtype) = 0;
    /// "dense", "gptq", "gptq+lora", "gptq+lota"...
    virtual std::string kind() const = 0;
    /// The plain layer that computes the same outputs at inference, when the layer's trainable parts
    /// are fixed (a LoTA-QAF layer: its merged quantized layer); the layer itself by default.
    virtual const Linear* inference_layer() { return this; }
};

using LinearPtr = std::shared_ptr<Linear>;

/// `w` (float32, on the CPU) as bfloat16 when every value is a bfloat16 value (a bf16 checkpoint computed in
/// float32), else an undefined tensor.
at::Tensor bf16_if_exact(const at::Tensor& w);

/// Plain linear layer: weight [N, K], optional bias [N]. The weight may be stored in bfloat16 under a
/// float32 compute dtype (store_bf16_if_exact): forward() widens it to the input's dtype.
class DenseLinear : public Linear {
  public:
    DenseLinear(at::Tensor weight, at::Tensor bias = {});
    /// A float32 weight on the CPU whose values are all bfloat16 values (a bf16 checkpoint's, computed in
    /// float32) is stored in bfloat16: the same products from half the memory and, in a decode step, half
    /// the bytes read (kernels/dense_gemv.h). Inference only. Returns whether it converted the weight.
    bool store_bf16_if_exact();
    at::Tensor forward(const at::Tensor& x) override;
    int64_t in_features() const override;
    int64_t out_features() const override;
    void to(const at::Device& device, at::ScalarType dtype) override;
    std::string kind() const override { return "dense"; }
    const at::Tensor& weight() const { return weight_; }
    const at::Tensor& bias() const { return bias_; }

  private:
    at::Tensor weight_, bias_;
};

}  // namespace lota::model
