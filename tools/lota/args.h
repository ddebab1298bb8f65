// Flags shared by several subcommands, declared once with their defaults in the help text.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace lota::cli {

/// --device cpu|cuda (default cpu).
void add_device_flag(CLI::App& sub, std::string& device);
/// --dtype f32|bf16|f16 (default f32 on cpu).
void add_dtype_flag(CLI::App& sub, std::string& dtype);
/// --seed S.
void add_seed_flag(CLI::App& sub, uint64_t& seed);

}  // namespace lota::cli
