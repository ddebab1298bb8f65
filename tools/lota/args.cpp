// Shared flag definitions (see args.h).
#include "args.h"

#include "io/adapter.h"
#include "adapter/attach.h"

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

void add_adapter_flag(CLI::App& sub, std::string& adapter) {
    sub.add_option("--adapter", adapter, "adapter directory (LoTA-QAF or LoRA) applied unmerged");
}

std::unique_ptr<model::Transformer> load_model(const std::string& model_dir, const std::string& adapter,
                                               const std::string& device, const std::string& dtype) {
    auto model = model::Transformer::load(model_dir, {device, dtype});
    if (!adapter.empty())
        for (const auto& layer : adapter::adapter_apply(*model, io::adapter_read(adapter), adapter))
            if (layer.lora) layer.lora->freeze();  // evaluation only: cast A, B once
    model->fuse_projections();  // one product for q/k/v and one for gate/up where the layers allow it
    return model;
}

}  // namespace lota::cli
