// HF config.json for the supported causal LMs: LlamaForCausalLM (Llama 2, 3, 3.1 with
// rope_scaling "llama3", 3.2 with tied embeddings), MistralForCausalLM, Qwen2ForCausalLM
// (q/k/v bias) and Qwen3ForCausalLM (q/k RMSNorm, explicit head_dim). Anything else is
// rejected with "unsupported architecture X". Both layouts are read: transformers 4 (top-level
// rope_theta / rope_scaling, torch_dtype) and transformers 5 (rope_parameters, dtype). A key that
// would change the model's numbers in a way lota does not implement (another rope type or rope key,
// partial rotary, hidden_act other than silu, MLP bias, Qwen sliding-window layers, logit
// soft-capping) is an error naming the key, never a silent default. The GPTQ "quantization_config" is kept as raw
// JSON for the quantization layer to interpret.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lota::io {

enum class Arch { LLAMA, MISTRAL, QWEN2, QWEN3 };

struct RopeScaling {
    std::string type;  ///< "" (none) or "llama3"
    double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
    int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
    Arch arch = Arch::LLAMA;
    int64_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
    int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0, vocab_size = 0;
    int64_t max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6, rope_theta = 10000.0;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  ///< bias on q/k/v (Qwen2 always; Llama's attention_bias flag)
    bool qk_norm = false;         ///< Qwen3 per-head RMSNorm on q and k
    int64_t bos_token_id = -1;
    std::vector<int64_t> eos_token_ids;
    std::string torch_dtype = "float32";
    nlohmann::json quantization_config;  ///< null unless the checkpoint is quantized
    bool rope_parameters_layout = false;  ///< rope settings came in transformers 5's "rope_parameters"
    nlohmann::json raw;                  ///< the whole file, for round-tripping unknown keys
};

/// Parses and validates `path` (a config.json). Throws lota::Error naming the file and key.
ModelConfig hf_config_read(const std::string& path);
/// Parses an already-loaded JSON object; `path` is only used in messages.
ModelConfig hf_config_parse(const nlohmann::json& j, const std::string& path);
/// config.json content that HF transformers loads for this config, with the rope settings in the
/// layout they were read in (rope_parameters_layout).
nlohmann::json hf_config_to_json(const ModelConfig& c);

std::string arch_name(Arch a);          ///< "llama", "mistral", "qwen2", "qwen3"
Arch arch_from_name(const std::string& name);  ///< inverse of arch_name; throws on unknown

}  // namespace lota::io
