// lota version: what this binary was built with and what it can run on (the device that
// --device auto picks).
#include <string>

#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

#include "args.h"
#include "commands.h"
#include "model/device.h"
#include "util/strfmt.h"

namespace {

int run_version(bool json) {
#ifdef LOTA_WITH_CUDA
    const bool kernels = true;
#else
    const bool kernels = false;
#endif
    const bool cuda = torch::cuda::is_available();
    const int devices = cuda ? (int)torch::cuda::device_count() : 0;
    const std::string auto_device = lota::model::device_resolve("auto");
    const nlohmann::json j = {{"version", "0.1.0"},     {"libtorch", TORCH_VERSION}, {"cuda_kernels", kernels},
                              {"cuda", cuda},           {"cuda_devices", devices},   {"auto_device", auto_device}};
    lota::cli::result_print(json, j,
                            lota::strfmt("lota 0.1.0\nlibtorch: %s\ncuda kernels: %s\ncuda: %s (%d devices)\n"
                                         "device auto: %s",
                                         TORCH_VERSION, kernels ? "built" : "not built", cuda ? "yes" : "no", devices,
                                         auto_device.c_str()));
    return 0;
}

LOTA_COMMAND("version", "Print the version, the LibTorch it uses and whether CUDA is usable",
             [](CLI::App& sub) -> lota::cli::CommandRun {
                 auto json = std::make_shared<bool>(false);
                 lota::cli::add_json_flag(sub, *json);
                 return [json] { return run_version(*json); };
             });

}  // namespace
