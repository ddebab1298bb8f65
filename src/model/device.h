// Device names as options structs and the CLI spell them: "cpu", "cuda", and "auto" (the CUDA
// device when this build of LibTorch can use one, else the CPU). Turning a resolved name into an
// at::Device is model::device_from_name (transformer.h).
#pragma once

#include <string>

namespace lota::model {

/// "auto" -> "cuda" when LibTorch reports a usable CUDA device (at::hasCUDA()), else "cpu";
/// "cpu" and "cuda" are returned unchanged. Throws lota::Error naming the known names otherwise.
std::string device_resolve(const std::string& device);

}  // namespace lota::model
