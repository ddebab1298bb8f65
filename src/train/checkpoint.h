// Training checkpoints (lota's own format, version 1). One directory per save:
//   OUT/checkpoint-<step>/adapter_model.safetensors, adapter_config.json   (io/adapter.h)
//                         optimizer.safetensors  AdamW m.<i>, v.<i> (LoRA only)
//                         trainer_state.json     {"format": "lota-trainer-state", "version": 1,
//                                                 step, total_steps, data_position, adamw_step,
//                                                 seed, method, rng: "derived"}
// Each directory is built under a temporary name and renamed (util/fs.h StagedDir), so a killed
// run leaves either a complete checkpoint or none; older checkpoints are removed after a save.
// RNG state: every random draw after initialisation (data order, dropout masks) is derived from
// (seed, step) or (seed, epoch), so the step and data position restore it exactly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "io/adapter.h"

namespace lota::train {

struct Checkpoint {
    io::Adapter adapter;
    std::map<std::string, at::Tensor> optimizer;  ///< empty for LoTA
    nlohmann::json state;                         ///< trainer_state.json
};

/// Writes OUT/checkpoint-<step> atomically and then removes older checkpoint-* directories.
void checkpoint_save(const std::string& out_dir, int64_t step, const Checkpoint& ckpt);

/// The newest complete checkpoint in `out_dir`, if any (validated: format, version).
std::optional<Checkpoint> checkpoint_load_latest(const std::string& out_dir);

}  // namespace lota::train
