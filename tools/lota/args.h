// Flags shared by several subcommands, declared once with their defaults in the help text.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "model/transformer.h"

namespace lota::cli {

/// --device cpu|cuda (default cpu).
void add_device_flag(CLI::App& sub, std::string& device);
/// --dtype f32|bf16|f16 (default f32 on cpu).
void add_dtype_flag(CLI::App& sub, std::string& dtype);
/// --seed S.
void add_seed_flag(CLI::App& sub, uint64_t& seed);
/// --adapter DIR: a LoTA-QAF or LoRA adapter applied unmerged.
void add_adapter_flag(CLI::App& sub, std::string& adapter);

/// Loads a model directory (dense, GPTQ or merged LoTA) and, when `adapter` is not empty, puts
/// that adapter on it unmerged (checked against the model first); then fuses q/k/v and gate/up
/// where the layers allow it (Transformer::fuse_projections). For inference commands only.
std::unique_ptr<model::Transformer> load_model(const std::string& model_dir, const std::string& adapter,
                                               const std::string& device, const std::string& dtype);

}  // namespace lota::cli
