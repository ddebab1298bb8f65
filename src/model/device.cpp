// Device and compute-dtype names (device.h).
#include "model/device.h"

#include <ATen/Context.h>

#include "util/check.h"

namespace lota::model {

std::string device_resolve(const std::string& device) {
    if (device == "auto") return at::hasCUDA() ? "cuda" : "cpu";
    if (device == "cpu") return device;
    LOTA_CHECK(device == "cuda", "unknown device '%s' (expected auto, cpu or cuda)", device.c_str());
    LOTA_CHECK(at::hasCUDA(), "device cuda: no CUDA device is usable by this build of lota (LibTorch); "
               "use --device cpu or auto");
    return device;
}

std::string dtype_resolve(const std::string& dtype, const std::string& device) {
    LOTA_CHECK(device == "cpu" || device == "cuda", "dtype_resolve: device must be resolved first (cpu or cuda), "
               "got '%s'", device.c_str());
    if (dtype == "auto") return device == "cuda" ? "bf16" : "f32";
    LOTA_CHECK(dtype == "f32" || dtype == "bf16" || dtype == "f16",
               "unknown dtype '%s' (expected auto, f32, bf16 or f16)", dtype.c_str());
    return dtype;
}

}  // namespace lota::model
