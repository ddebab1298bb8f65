// What differs between LoTA-QAF and LoRA training, chosen once from the adapter method: the
// method's adapter_config.json fields, the step-0 adapter, the optimizer, and two per-step hooks
// (LoRA's dropout generator before the forward; LoTA-QAF's marker statistics of the adapter the
// forward used). The training loop (trainer.cpp) calls these and never branches on the method.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <ATen/core/Generator.h>

#include "adapter/attach.h"
#include "io/adapter.h"
#include "train/optimizer.h"
#include "train/step_stats.h"
#include "train/trainer.h"

namespace lota::train {

class TrainMethod {
  public:
    virtual ~TrainMethod() = default;
    /// Sets the method's own fields of `config` (the common ones are the trainer's).
    virtual void config_fill(io::AdapterConfig& config, const TrainOptions& options, int64_t total_steps) const = 0;
    /// Step-0 tensors of one module (CPU), drawn from `gen`: LoTA A = lota_init_a, B = 0; LoRA
    /// A = kaiming-uniform, B = 0.
    virtual io::AdapterModule module_initial(const io::AdapterTarget& target, int64_t r, at::Generator& gen) const = 0;
    /// The optimizer over the adapted layers' parameters.
    virtual std::unique_ptr<Optimizer> optimizer_make(const std::vector<adapter::AdaptedLayer>& layers,
                                                      const TrainOptions& options) const = 0;
    /// Before the forward of optimizer step `step`: the generator the layers' dropout draws from
    /// (derived from (seed, step), set on the layers), or nullopt when the method draws nothing.
    virtual std::optional<at::Generator> step_begin(const std::vector<adapter::AdaptedLayer>& layers,
                                                    const at::Device& device, uint64_t seed, int64_t step) const = 0;
    /// Statistics of the adapter the step's forward used; called before the optimizer step. No host sync.
    virtual StepStats step_stats(const std::vector<adapter::AdaptedLayer>& layers) const = 0;
};

/// The TrainMethod of `method`.
std::unique_ptr<TrainMethod> train_method_make(io::AdapterMethod method);

}  // namespace lota::train
