// Training checkpoints (lota's own format, version 2). One directory per save:
//   OUT/checkpoint-<step>/adapter_model.safetensors, adapter_config.json   (io/adapter.h)
//                         optimizer.safetensors  the optimizer's tensors by name (AdamW: "<param>.m",
//                                                "<param>.v"; none for t-SignSGD, so no file)
//                         trainer_state.json     {"format": "lota-trainer-state", "version": 2,
//                                                 step, total_steps, data_position, seed, method,
//                                                 batch_size, "optimizer": {name, its scalars}, rng}
// What the optimizer keeps is its own business (train/optimizer.h OptimizerState); this file stores it.
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
    std::map<std::string, at::Tensor> optimizer;  ///< optimizer.safetensors (empty: no file)
    nlohmann::json state;                         ///< trainer_state.json
    std::string dir;                              ///< where it was loaded from (for messages)
};

/// Writes OUT/checkpoint-<step> atomically and then removes older checkpoint-* directories.
void checkpoint_save(const std::string& out_dir, int64_t step, const Checkpoint& ckpt);

/// The newest complete checkpoint in `out_dir`, if any (validated: format, version). Throws
/// lota::Error for a trainer_state.json of another format or version.
std::optional<Checkpoint> checkpoint_load_latest(const std::string& out_dir);

}  // namespace lota::train
