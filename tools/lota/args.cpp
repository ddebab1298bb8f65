// Shared flag definitions (see args.h).
#include "args.h"

namespace lota::cli {

void add_device_flag(CLI::App& sub, std::string& device) {
    sub.add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
}

void add_dtype_flag(CLI::App& sub, std::string& dtype) {
    sub.add_option("--dtype", dtype, "compute dtype: f32, bf16 or f16")
        ->check(CLI::IsMember({"f32", "bf16", "f16"}))
        ->capture_default_str();
}

void add_seed_flag(CLI::App& sub, uint64_t& seed) {
    sub.add_option("--seed", seed, "random seed")->capture_default_str();
}

}  // namespace lota::cli
