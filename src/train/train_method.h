// What differs between LoTA-QAF, LoRA and QA-LoRA training, chosen once from the adapter method: the
// method's adapter_config.json fields, the step-0 adapter, the optimizer, the per-micro-batch and
// per-step hooks (LoRA's and QA-LoRA's dropout generator before each forward; LoTA-QAF's marker
// statistics and QA-LoRA's mean offset of the adapter the forward used) and where the gradients are
// for their reduction (train/grad_reduce.h). The training loop (trainer.cpp) calls these and never
// branches on the method.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <ATen/core/Generator.h>

#include "adapter/attach.h"
#include "io/adapter.h"
#include "train/grad_reduce.h"
#include "train/optimizer.h"
#include "train/step_stats.h"
#include "train/trainer.h"

namespace lota::train {

class TrainMethod {
  public:
    virtual ~TrainMethod() = default;
    /// Sets the method's own fields of `config` (the common ones are the trainer's).
    virtual void config_fill(io::AdapterConfig& config, const TrainOptions& options, int64_t total_steps) const = 0;
    /// Step-0 tensors of one module (CPU), drawn from `gen`, for the adapter `config` (rank, group size):
    /// LoTA A = lota_init_a, B = 0; LoRA A = kaiming-uniform, B = 0; QA-LoRA A [r, K/g] = xavier-uniform
    /// (the official code's init), B = 0.
    virtual io::AdapterModule module_initial(const io::AdapterTarget& target, const io::AdapterConfig& config,
                                             at::Generator& gen) const = 0;
    /// The optimizer over the adapted layers' parameters.
    virtual std::unique_ptr<Optimizer> optimizer_make(const std::vector<adapter::AdaptedLayer>& layers,
                                                      const TrainOptions& options) const = 0;
    /// Before the forward of micro-batch `micro` (its index in the step's global batch, whichever rank
    /// runs it) of optimizer step `step`: the generator the layers' dropout draws from (derived from
    /// (seed, step, micro), set on the layers), or nullopt when the method draws nothing.
    virtual std::optional<at::Generator> micro_batch_begin(const std::vector<adapter::AdaptedLayer>& layers,
                                                           const at::Device& device, uint64_t seed, int64_t step,
                                                           int64_t micro) const = 0;
    /// The adapter gradients, in the order the backward finishes them (the last layer's first).
    virtual std::vector<GradReducer::Entry> grad_entries(const std::vector<adapter::AdaptedLayer>& layers) const = 0;
    /// Makes the layers' backward report each finished gradient to `reducer` (entries as numbered by
    /// grad_entries); a method whose gradients autograd accumulates installs nothing.
    virtual void grad_hooks(const std::vector<adapter::AdaptedLayer>& layers, GradReducer& reducer) const = 0;
    /// Statistics of the adapter the step's forward used; called before the optimizer step. No host sync.
    virtual StepStats step_stats(const std::vector<adapter::AdaptedLayer>& layers) const = 0;
};

/// The TrainMethod of `method`.
std::unique_ptr<TrainMethod> train_method_make(io::AdapterMethod method);

}  // namespace lota::train
