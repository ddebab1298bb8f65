// The trainer's optimizer interface and its two implementations: t-SignSGD over LoTA-QAF's ternary
// adapters (the update rule is train/tsignsgd.h; optionally on a gradient moving average) and AdamW
// over LoRA's and QA-LoRA's float32 factors
// (train/adamw.h). The training loop sees only Optimizer: one step per optimizer step with its
// statistics by name (train/step_stats.h), and the state a checkpoint keeps, by name. Which one a
// run uses is decided once, by the adapter method (train/train_method.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "train/adamw.h"
#include "train/step_stats.h"
#include "train/tsignsgd.h"

namespace lota::train {

/// What a checkpoint keeps of an optimizer (train/checkpoint.h).
struct OptimizerState {
    std::map<std::string, at::Tensor> tensors;          ///< optimizer.safetensors, by name (CPU)
    nlohmann::json scalars = nlohmann::json::object();  ///< trainer_state.json's "optimizer" object
};

class Optimizer {
  public:
    virtual ~Optimizer() = default;
    /// Name recorded in checkpoints: "t-signsgd" or "adamw".
    virtual std::string name() const = 0;
    /// Updates every parameter from its accumulated gradient at optimizer step t of T (t from 1).
    /// Returns the step's statistics by name (train_log.jsonl keys).
    virtual StepStats step(int64_t t, int64_t T) = 0;
    /// Clears the accumulated gradients (after step()).
    virtual void zero_grad() = 0;
    /// This optimizer's part of the progress line, from the step's statistics after StepStats::read.
    virtual std::string progress_text(const nlohmann::json& stats) const = 0;
    /// The state that makes a resumed run continue exactly; state_load restores it. state_load throws
    /// lota::Error naming `where` when a tensor is missing, unexpected or of the wrong shape or dtype.
    virtual OptimizerState state_save() const = 0;
    virtual void state_load(const OptimizerState& state, const std::string& where) = 0;
};

/// t-SignSGD over int8 ternary tensors, each with its float32 gradient buffer (the LoTA-QAF layers'
/// a_t, b_t and grad buffers, shared by handle). step() does not sync with the host: its statistics
/// sigma_t (host), grad_norm, n_changed and guard_active (device) are read with the loss.
/// With options.momentum = 0 it is stateless (the paper's rule). With β = options.momentum > 0 it
/// keeps one float32 moving average m per tensor (on the parameter's device, zero at the start):
/// step() first sets m ← β·m + (1 − β)·g, then runs tsignsgd_step on (param, m), so the quantile,
/// τ, the phase-2 guard and grad_norm all see m. State then: "<name>.m" per tensor and "momentum".
class TSignSgdOptimizer : public Optimizer {
  public:
    /// names: one per parameter, the keys of its moving average in a checkpoint (default "0", "1", ...).
    TSignSgdOptimizer(std::vector<TSignSgdParam> params, TSignSgdOptions options,
                      std::vector<std::string> names = {});
    std::string name() const override { return "t-signsgd"; }
    StepStats step(int64_t t, int64_t T) override;
    void zero_grad() override;
    std::string progress_text(const nlohmann::json& stats) const override;
    OptimizerState state_save() const override;
    void state_load(const OptimizerState& state, const std::string& where) override;
    /// The moving averages (empty when momentum is 0), in parameter order.
    const std::vector<at::Tensor>& moments() const { return moments_; }

  private:
    std::vector<TSignSgdParam> params_;
    TSignSgdOptions options_;
    std::vector<std::string> names_;
    std::vector<at::Tensor> moments_;  ///< m per parameter when options_.momentum > 0
    std::vector<TSignSgdParam> ema_params_;  ///< (param, m) pairs the rule runs on when momentum > 0
};

/// AdamW with adamw.h's learning-rate schedule and clipping over named float32 leaves (their
/// .grad()). State: the step count and per parameter "<name>.m", "<name>.v". Statistics: lr,
/// grad_norm (host values; the step reads the gradient norm back).
class AdamWOptimizer : public Optimizer {
  public:
    AdamWOptimizer(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options);
    std::string name() const override { return "adamw"; }
    StepStats step(int64_t t, int64_t T) override;
    void zero_grad() override;
    std::string progress_text(const nlohmann::json& stats) const override;
    OptimizerState state_save() const override;
    void state_load(const OptimizerState& state, const std::string& where) override;

  private:
    std::vector<std::string> names_;
    std::vector<at::Tensor> params_;
    AdamWOptions options_;
    AdamWState state_;
};

}  // namespace lota::train
