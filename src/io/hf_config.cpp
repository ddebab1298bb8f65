// config.json reader/writer for the supported architectures (see hf_config.h).
#include "io/hf_config.h"

#include <cmath>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::io {
namespace {

struct ArchRow {
    Arch arch;
    const char* name;        // lota's short name (--arch)
    const char* class_name;  // config.json "architectures"[0]
    const char* model_type;  // config.json "model_type"
};
const ArchRow kArchs[] = {
    {Arch::LLAMA, "llama", "LlamaForCausalLM", "llama"},
    {Arch::MISTRAL, "mistral", "MistralForCausalLM", "mistral"},
    {Arch::QWEN2, "qwen2", "Qwen2ForCausalLM", "qwen2"},
    {Arch::QWEN3, "qwen3", "Qwen3ForCausalLM", "qwen3"},
};

const ArchRow& arch_row(Arch a) {
    for (const auto& r : kArchs)
        if (r.arch == a) return r;
    LOTA_ASSERT(false, "arch %d", static_cast<int>(a));
    return kArchs[0];
}

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& path, int64_t def, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
        LOTA_CHECK(!required, "%s: missing required key '%s'", path.c_str(), key);
        return def;
    }
    LOTA_CHECK(j[key].is_number_integer(), "%s: key '%s' must be an integer, got %s", path.c_str(), key,
               j[key].dump().c_str());
    return j[key].get<int64_t>();
}

double get_num(const nlohmann::json& j, const char* key, const std::string& path, double def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    LOTA_CHECK(j[key].is_number(), "%s: key '%s' must be a number, got %s", path.c_str(), key, j[key].dump().c_str());
    return j[key].get<double>();
}

std::string get_str(const nlohmann::json& j, const char* key, const std::string& path, const std::string& def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    LOTA_CHECK(j[key].is_string(), "%s: key '%s' must be a string, got %s", path.c_str(), key, j[key].dump().c_str());
    return j[key].get<std::string>();
}

bool get_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    LOTA_CHECK(j[key].is_boolean(), "%s: key '%s' must be true or false", path.c_str(), key);
    return j[key].get<bool>();
}

}  // namespace

std::string arch_name(Arch a) { return arch_row(a).name; }

Arch arch_from_name(const std::string& name) {
    for (const auto& r : kArchs)
        if (name == r.name) return r.arch;
    LOTA_FAIL("unsupported architecture %s (supported: llama, mistral, qwen2, qwen3)", name.c_str());
}

ModelConfig hf_config_read(const std::string& path) {
    std::string text = file_read_text(path);
    nlohmann::json j;
    try {
        j = json_parse(text, path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", path.c_str(), e.what());
    }
    return hf_config_parse(j, path);
}

ModelConfig hf_config_parse(const nlohmann::json& j, const std::string& path) {
    const char* p = path.c_str();
    LOTA_CHECK(j.is_object(), "%s: expected a JSON object", p);
    ModelConfig c;
    c.raw = j;
    std::string cls;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string())
        cls = j["architectures"][0].get<std::string>();
    std::string model_type = get_str(j, "model_type", path, "");
    const ArchRow* row = nullptr;
    for (const auto& r : kArchs)
        if ((!cls.empty() && cls == r.class_name) || (cls.empty() && model_type == r.model_type)) row = &r;
    LOTA_CHECK(row, "%s: unsupported architecture %s (supported: LlamaForCausalLM, MistralForCausalLM, "
               "Qwen2ForCausalLM, Qwen3ForCausalLM)", p, (cls.empty() ? model_type : cls).c_str());
    c.arch = row->arch;

    c.hidden_size = get_int(j, "hidden_size", path, 0, true);
    c.intermediate_size = get_int(j, "intermediate_size", path, 0, true);
    c.num_hidden_layers = get_int(j, "num_hidden_layers", path, 0, true);
    c.num_attention_heads = get_int(j, "num_attention_heads", path, 0, true);
    c.num_key_value_heads = get_int(j, "num_key_value_heads", path, c.num_attention_heads, false);
    c.vocab_size = get_int(j, "vocab_size", path, 0, true);
    c.max_position_embeddings = get_int(j, "max_position_embeddings", path, 2048, false);
    LOTA_CHECK(c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 && c.vocab_size > 0,
               "%s: hidden_size, intermediate_size, num_hidden_layers and vocab_size must be positive", p);
    LOTA_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 &&
                   c.num_attention_heads % c.num_key_value_heads == 0,
               "%s: num_attention_heads (%lld) must be a positive multiple of num_key_value_heads (%lld)", p,
               (long long)c.num_attention_heads, (long long)c.num_key_value_heads);
    int64_t default_head_dim = c.hidden_size / c.num_attention_heads;
    c.head_dim = get_int(j, "head_dim", path, default_head_dim, false);
    LOTA_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, "%s: head_dim must be positive and even, got %lld", p,
               (long long)c.head_dim);
    LOTA_CHECK(c.head_dim * c.num_attention_heads == c.hidden_size || j.contains("head_dim"),
               "%s: hidden_size %lld is not divisible by num_attention_heads %lld (and no head_dim is given)", p,
               (long long)c.hidden_size, (long long)c.num_attention_heads);
    LOTA_CHECK(c.max_position_embeddings > 0, "%s: max_position_embeddings must be positive, got %lld", p,
               (long long)c.max_position_embeddings);
    c.rms_norm_eps = get_num(j, "rms_norm_eps", path, 1e-6);
    LOTA_CHECK(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0,
               "%s: rms_norm_eps must be a finite number > 0, got %g", p, c.rms_norm_eps);
    c.rope_theta = get_num(j, "rope_theta", path, 10000.0);
    LOTA_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 1, "%s: rope_theta must be a finite number > 1, got %g",
               p, c.rope_theta);
    c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", path, c.arch == Arch::QWEN3 ? false : false);
    c.attention_bias = c.arch == Arch::QWEN2 ? true : get_bool(j, "attention_bias", path, false);
    c.qk_norm = c.arch == Arch::QWEN3;
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
        const auto& rs = j["rope_scaling"];
        LOTA_CHECK(rs.is_object(), "%s: rope_scaling must be an object or null", p);
        std::string type = get_str(rs, "rope_type", path, get_str(rs, "type", path, ""));
        if (type == "llama3") {
            c.rope_scaling.type = type;
            c.rope_scaling.factor = get_num(rs, "factor", path, 8.0);
            c.rope_scaling.low_freq_factor = get_num(rs, "low_freq_factor", path, 1.0);
            c.rope_scaling.high_freq_factor = get_num(rs, "high_freq_factor", path, 4.0);
            c.rope_scaling.original_max_position_embeddings =
                get_int(rs, "original_max_position_embeddings", path, 8192, false);
            const auto& r = c.rope_scaling;
            LOTA_CHECK(std::isfinite(r.factor) && r.factor > 0 && std::isfinite(r.low_freq_factor) &&
                           r.low_freq_factor > 0 && std::isfinite(r.high_freq_factor) &&
                           r.high_freq_factor > r.low_freq_factor && r.original_max_position_embeddings > 0,
                       "%s: rope_scaling (llama3) needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                       "original_max_position_embeddings > 0, got %g, %g, %g, %lld",
                       p, r.factor, r.low_freq_factor, r.high_freq_factor,
                       (long long)r.original_max_position_embeddings);
        } else {
            LOTA_CHECK(type == "default" || type.empty(), "%s: unsupported rope_scaling type '%s' (supported: llama3)",
                       p, type.c_str());
        }
    }
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"];
    if (j.contains("eos_token_id")) {
        const auto& e = j["eos_token_id"];
        if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
        if (e.is_array())
            for (const auto& x : e)
                if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
    }
    if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"];
    if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"];
    if (j.contains("quantization_config")) c.quantization_config = j["quantization_config"];
    return c;
}

nlohmann::json hf_config_to_json(const ModelConfig& c) {
    const ArchRow& row = arch_row(c.arch);
    nlohmann::json j = c.raw.is_object() ? c.raw : nlohmann::json::object();
    j["architectures"] = {row.class_name};
    j["model_type"] = row.model_type;
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
    j["vocab_size"] = c.vocab_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["hidden_act"] = "silu";
    j["initializer_range"] = 0.02;
    j["torch_dtype"] = c.torch_dtype;
    if (c.arch == Arch::LLAMA || c.arch == Arch::QWEN3) j["attention_bias"] = c.attention_bias;
    if (c.arch == Arch::LLAMA) j["mlp_bias"] = false;
    if (c.arch == Arch::MISTRAL || c.arch == Arch::QWEN2 || c.arch == Arch::QWEN3) j["sliding_window"] = nullptr;
    if (c.arch == Arch::QWEN2 || c.arch == Arch::QWEN3) j["use_sliding_window"] = false;
    if (c.rope_scaling.type == "llama3") {
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", c.rope_scaling.factor},
                             {"low_freq_factor", c.rope_scaling.low_freq_factor},
                             {"high_freq_factor", c.rope_scaling.high_freq_factor},
                             {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
    } else {
        j["rope_scaling"] = nullptr;
    }
    if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
    if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
    else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
    if (!c.quantization_config.is_null()) j["quantization_config"] = c.quantization_config;
    return j;
}

}  // namespace lota::io
