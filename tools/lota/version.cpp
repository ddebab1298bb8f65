// lota version: what this binary was built with and what it can run on (scripts use the
// "cuda: yes" line to pick --device).
#include <cstdio>

#include <torch/cuda.h>
#include <torch/version.h>

#include "commands.h"

namespace {

int run_version() {
    std::printf("lota 0.1.0\nlibtorch: %s\n", TORCH_VERSION);
#ifdef LOTA_WITH_CUDA
    const bool cuda = torch::cuda::is_available();
    std::printf("cuda kernels: built\ncuda: %s (%d devices)\n", cuda ? "yes" : "no", cuda ? (int)torch::cuda::device_count() : 0);
#else
    std::printf("cuda kernels: not built\ncuda: no\n");
#endif
    return 0;
}

LOTA_COMMAND("version", "Print the version, the LibTorch it uses and whether CUDA is usable",
             [](CLI::App&) -> lota::cli::CommandRun { return [] { return run_version(); }; });

}  // namespace
