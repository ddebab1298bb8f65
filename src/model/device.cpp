// Device name resolution (device.h).
#include "model/device.h"

#include <ATen/Context.h>

#include "util/check.h"

namespace lota::model {

std::string device_resolve(const std::string& device) {
    if (device == "auto") return at::hasCUDA() ? "cuda" : "cpu";
    LOTA_CHECK(device == "cpu" || device == "cuda", "unknown device '%s' (expected auto, cpu or cuda)", device.c_str());
    return device;
}

}  // namespace lota::model
