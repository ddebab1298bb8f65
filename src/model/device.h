// Where a command runs and in which compute dtype, from the user's words: "auto" picks CUDA when a
// CUDA device is usable (else the CPU), and bf16 on CUDA (f32 on the CPU). Every entry point that
// takes a device or dtype name resolves it here, so "auto" means the same everywhere.
#pragma once

#include <string>

namespace lota::model {

/// "auto" -> "cuda" when a CUDA device is usable, else "cpu"; "cpu" -> "cpu"; "cuda" -> "cuda" when
/// usable. Throws lota::Error for "cuda" without a usable device and for any other name.
std::string device_resolve(const std::string& device);

/// "auto" -> "bf16" on `device` "cuda", "f32" on "cpu"; "f32" | "bf16" | "f16" pass through.
/// `device` must already be resolved (device_resolve). Throws lota::Error for any other name.
std::string dtype_resolve(const std::string& dtype, const std::string& device);

}  // namespace lota::model
