// Adapter directories in peft's layout (DESIGN §3; https://github.com/huggingface/peft, "LoRA"):
//   adapter_model.safetensors  base_model.model.<module>.lora_A.weight [r, K]
//                              base_model.model.<module>.lora_B.weight [N, r]
//                              (LoTA-QAF: int8 in {−1, 0, 1}; LoRA: bf16, fp32 kept as fp32;
//                              QA-LoRA: float32, lora_A.weight [r, K/group_size])
//   adapter_config.json        peft fields (peft_type "LORA", r, lora_alpha, lora_dropout,
//                              target_modules, base_model_name_or_path, task_type "CAUSAL_LM",
//                              bias "none") plus, for LoTA-QAF only, "lota": {method, omega, bits,
//                              group_size, schedule...}; for QA-LoRA only, peft's "use_qalora": true and
//                              "qalora_group_size", and "qalora": {method, pooling, bits, group_size,
//                              formula}. peft ignores unknown keys. The "lota" / "qalora" block is what
//                              marks the method; a peft QA-LoRA adapter without lota's "qalora" block is
//                              refused (peft's scale of the pooled input has changed between versions).
// <module> is the HF prefix, e.g. "model.layers.3.self_attn.q_proj". This file knows the format,
// not models: adapter_check compares against module shapes the caller lists.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace lota::io {

/// Which kind of adapter: LoTA-QAF (ternary int8, mergeable into the grid), 16-bit LoRA, or QA-LoRA
/// (16-bit on the group-pooled input, mergeable as a per-group offset).
enum class AdapterMethod {
    LOTA,    ///< "lota": LoTA-QAF; adapter_config.json has the "lota" block
    LORA,    ///< "lora": the 16-bit LoRA baseline
    QALORA,  ///< "qalora": QA-LoRA (Xu et al. 2024); adapter_config.json has the "qalora" block
};

/// "lota" -> LOTA, "lora" -> LORA, "qalora" -> QALORA; throws lota::Error naming the known names for
/// anything else. `what` names the origin in the error (a flag, a file).
AdapterMethod adapter_method_parse(const std::string& name, const std::string& what);
/// The name adapter_method_parse accepts: "lota", "lora" or "qalora".
const char* adapter_method_name(AdapterMethod method);

struct AdapterConfig {
    AdapterMethod method = AdapterMethod::LOTA;
    int64_t r = 64;
    double lora_alpha = 128;      ///< LoRA scaling α/r (LoTA: recorded, unused)
    double lora_dropout = 0.0;
    std::vector<std::string> target_modules;  ///< short names: q_proj, k_proj...
    std::string base_model;                   ///< base_model_name_or_path
    double omega = 48;            ///< LoTA ω
    int bits = 0, group_size = 0; ///< LoTA, QA-LoRA: the base model's quantization (checked on load)
    std::string qalora_pooling = "mean";  ///< QA-LoRA: "mean" or "sum" (quant/qalora.h)
    nlohmann::json lota_extra = nlohmann::json::object();  ///< other "lota" keys (schedule), preserved
};

/// One adapted module's tensors (peft layout).
struct AdapterModule {
    at::Tensor lora_a;  ///< [r, K]
    at::Tensor lora_b;  ///< [N, r]
};

struct Adapter {
    AdapterConfig config;
    std::map<std::string, AdapterModule> modules;  ///< by module prefix
};

/// adapter_config.json object <-> config; `file` names the origin in errors.
AdapterConfig adapter_config_from_json(const nlohmann::json& j, const std::string& file);
nlohmann::json adapter_config_to_json(const AdapterConfig& c);

/// Reads DIR/adapter_config.json and DIR/adapter_model.safetensors; validates names, dtypes
/// (int8 ternary for LoTA), rank and A/B pairing. Throws lota::Error naming file and tensor.
Adapter adapter_read(const std::string& dir);

/// Writes both files into the existing directory `dir`, each atomically (temp name + rename).
void adapter_write(const std::string& dir, const Adapter& adapter);

/// Shape of a module the model offers for adaptation.
struct AdapterTarget {
    std::string name;  ///< module prefix
    int64_t in_features = 0, out_features = 0;
};

/// Checks that every adapter module is one of `targets` with matching shapes [r, K] / [N, r] (QA-LoRA:
/// [r, K/group_size]), and that every target whose short name is in config.target_modules has an adapter;
/// for LoTA and QA-LoRA also bits/group_size against the model's. `dir` names the adapter in errors.
void adapter_check(const Adapter& adapter, const std::vector<AdapterTarget>& targets, int bits, int group_size,
                   const std::string& dir);

}  // namespace lota::io
