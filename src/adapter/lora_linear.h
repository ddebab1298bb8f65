// LoraLinear: the 16-bit LoRA baseline (Hu et al. 2021; the paper's GPTQ+LoRA) on top of any
// frozen model::Linear (here the quantized base): y = base(x) + (α/r)·dropout(x)·Aᵀ·Bᵀ.
// A [r, K] and B [N, r] are float32 master tensors with requires_grad (AdamW updates them, see
// train/adamw.h); forward casts them to x's dtype (bf16 on CUDA). Dropout masks are drawn on x's
// device from a generator of that device (lora_dropout_generator) that the trainer seeds from
// (seed, step), so a resumed run draws the same masks. Not mergeable into the grid.
#pragma once

#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "model/linear.h"

namespace lota::adapter {

class LoraLinear : public model::Linear {
  public:
    /// base: frozen layer; a [r, K], b [N, r] (float, made float32 leaves with requires_grad on
    /// base's device); scaling = α/r; dropout probability p in [0, 1).
    LoraLinear(model::LinearPtr base, at::Tensor a, at::Tensor b, double scaling, double dropout);
    at::Tensor forward(const at::Tensor& x) override;
    int64_t in_features() const override { return base_->in_features(); }
    int64_t out_features() const override { return base_->out_features(); }
    void to(const at::Device& device, at::ScalarType dtype) override;
    std::string kind() const override { return base_->kind() + "+lora"; }

    at::Tensor& lora_a() { return a_; }
    at::Tensor& lora_b() { return b_; }
    /// Dropout is applied only while a generator is set (training; the trainer sets one per step).
    /// Its device type must be that of the inputs (see lora_dropout_generator).
    void set_generator(std::optional<at::Generator> gen) { gen_ = std::move(gen); }
    /// Inference only (evaluation, generation): A and B are cast to the compute dtype once and
    /// the casts reused, instead of at every forward. A and B must not change afterwards.
    void freeze() { frozen_ = true; }

  private:
    model::LinearPtr base_;
    at::Tensor a_, b_;
    double scaling_, dropout_;
    std::optional<at::Generator> gen_;
    bool frozen_ = false;
    at::Tensor a_cast_, b_cast_;  ///< frozen: A, B in the last compute dtype
};

/// peft's LoRA init: A kaiming-uniform (a = √5, i.e. U(−1/√K, 1/√K)) from `gen`, B zeros; float32.
at::Tensor lora_init_a(int64_t r, int64_t in_features, at::Generator& gen);

/// A dropout generator on `device` seeded with `seed`: a CPU generator for CPU, a CUDA (Philox)
/// generator for CUDA. Throws for other devices, or CUDA in a build without CUDA.
at::Generator lora_dropout_generator(const at::Device& device, uint64_t seed);

}  // namespace lota::adapter
