// AdamW (Loshchilov & Hutter 2019, PyTorch's torch.optim.AdamW semantics) for the 16-bit LoRA
// baseline, with the learning-rate schedule (linear warmup, then constant or cosine) and global
// gradient-norm clipping. State is plain tensors so checkpoints store it as safetensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::train {

struct AdamWOptions {
    double lr = 2e-4;             ///< peak learning rate
    double beta1 = 0.9, beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;    ///< decoupled: p ← p·(1 − lr·wd)
    double warmup_ratio = 0.03;   ///< fraction of steps with linear warmup from 0
    std::string schedule = "constant";  ///< constant | cosine (to 0 at the last step)
    double max_grad_norm = 0.3;   ///< global L2 clipping; ≤ 0 disables
};

struct AdamWState {
    std::vector<at::Tensor> m, v;  ///< float32, one per parameter (created on the first step)
    int64_t step = 0;
};

/// Learning rate at optimizer step t (1-based) of T.
double adamw_lr(const AdamWOptions& o, int64_t t, int64_t T);

/// Clips the gradients of `params` to max_grad_norm (if > 0), then one AdamW update at rate lr.
/// Returns the global gradient norm before clipping. Parameters without a gradient are skipped.
double adamw_step(const std::vector<at::Tensor>& params, AdamWState& state, const AdamWOptions& o, double lr);

}  // namespace lota::train
