// config.json reader/writer for the supported architectures (see hf_config.h).
#include "io/hf_config.h"

#include <cmath>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/json_read.h"
#include "util/log.h"

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

constexpr int64_t kMaxWidth = int64_t{1} << 24;  // hidden, intermediate, heads, head_dim, layers
constexpr int64_t kMaxCount = int64_t{1} << 31;  // vocabulary, positions

void check_at_most(int64_t value, int64_t limit, const char* key, const char* path) {
    LOTA_CHECK(value <= limit, "%s: %s = %lld is larger than lota supports (%lld)", path, key, (long long)value,
               (long long)limit);
}

// RoPE settings as transformers 4 writes them (top-level "rope_theta", "rope_scaling") or as
// transformers 5 does ("rope_parameters" holding rope_theta, rope_type and the scaling keys).
// Either layout, or both when they agree; a rope type or key lota does not implement is an error.
void parse_rope(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
    const char* p = path.c_str();
    const bool has_params = j.contains("rope_parameters") && !j["rope_parameters"].is_null();
    const bool has_scaling = j.contains("rope_scaling") && !j["rope_scaling"].is_null();
    nlohmann::json rs = nlohmann::json::object();  // the merged rope settings
    std::string where = "rope_scaling";
    if (has_scaling) {
        LOTA_CHECK(j["rope_scaling"].is_object(), "%s: rope_scaling must be an object or null", p);
        rs = j["rope_scaling"];
    }
    if (has_params) {
        const auto& rp = j["rope_parameters"];
        LOTA_CHECK(rp.is_object(), "%s: rope_parameters must be an object or null", p);
        // A per-attention-type map ({"full_attention": {...}, "sliding_attention": {...}}) is not one model.
        for (auto& [k, v] : rp.items())
            LOTA_CHECK(!v.is_object(), "%s: rope_parameters.%s is a per-layer-type rope setting; lota supports one "
                       "rope for all layers", p, k.c_str());
        for (auto& [k, v] : rp.items()) {
            if (rs.contains(k) && k != "rope_theta")
                LOTA_CHECK(rs[k] == v, "%s: rope_parameters.%s = %s disagrees with rope_scaling.%s = %s", p, k.c_str(),
                           v.dump().c_str(), k.c_str(), rs[k].dump().c_str());
            rs[k] = v;
        }
        where = "rope_parameters";
    }
    const double top_theta = get_num(j, "rope_theta", path, -1.0);
    const double param_theta = get_num(rs, "rope_theta", path, -1.0);
    LOTA_CHECK(top_theta < 0 || param_theta < 0 || top_theta == param_theta,
               "%s: rope_theta = %g disagrees with rope_parameters.rope_theta = %g", p, top_theta, param_theta);
    c.rope_theta = param_theta >= 0 ? param_theta : top_theta >= 0 ? top_theta : 10000.0;
    LOTA_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 1, "%s: rope_theta must be a finite number > 1, got %g",
               p, c.rope_theta);

    std::string type = get_str(rs, "rope_type", path + " " + where, get_str(rs, "type", path + " " + where, ""));
    LOTA_CHECK(type.empty() || type == "default" || type == "llama3",
               "%s: unsupported %s rope_type '%s' (supported: default, llama3)", p, where.c_str(), type.c_str());
    const double partial = get_num(rs, "partial_rotary_factor", path, get_num(j, "partial_rotary_factor", path, 1.0));
    LOTA_CHECK(partial == 1.0, "%s: partial_rotary_factor = %g is not supported (lota rotates the whole head)", p,
               partial);
    static const char* const kDefaultKeys[] = {"rope_type", "type", "rope_theta", "partial_rotary_factor"};
    static const char* const kLlama3Keys[] = {"factor", "low_freq_factor", "high_freq_factor",
                                              "original_max_position_embeddings"};
    for (auto& [k, v] : rs.items()) {
        bool known = false;
        for (const char* d : kDefaultKeys) known = known || k == d;
        if (type == "llama3")
            for (const char* d : kLlama3Keys) known = known || k == d;
        LOTA_CHECK(known, "%s: %s key '%s' (= %s) is not understood for rope_type '%s'", p, where.c_str(), k.c_str(),
                   v.dump().c_str(), type.empty() ? "default" : type.c_str());
    }
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
                   p, r.factor, r.low_freq_factor, r.high_freq_factor, (long long)r.original_max_position_embeddings);
    }
    c.rope_parameters_layout = has_params;
}

// Keys that would change the model's numbers in a way lota does not implement: an error, never a
// silent default. (Keys that only matter for training or for generation settings are ignored.)
void check_numerics_keys(const nlohmann::json& j, const std::string& path, const ModelConfig& c) {
    const char* p = path.c_str();
    if (j.contains("hidden_act") && !j["hidden_act"].is_null())
        LOTA_CHECK(j["hidden_act"] == "silu", "%s: hidden_act %s is not supported (expected \"silu\")", p,
                   j["hidden_act"].dump().c_str());
    LOTA_CHECK(!get_bool(j, "mlp_bias", path, false), "%s: mlp_bias = true is not supported", p);
    if (c.arch == Arch::QWEN2 || c.arch == Arch::QWEN3) {
        LOTA_CHECK(!get_bool(j, "use_sliding_window", path, false),
                   "%s: use_sliding_window = true is not supported (lota attends to the whole context)", p);
        if (j.contains("layer_types") && j["layer_types"].is_array())
            for (const auto& t : j["layer_types"])
                LOTA_CHECK(t == "full_attention", "%s: layer_types entry %s is not supported (expected "
                           "\"full_attention\")", p, t.dump().c_str());
    }
    for (const char* k : {"attn_logit_softcapping", "final_logit_softcapping"})
        LOTA_CHECK(!j.contains(k) || j[k].is_null(), "%s: %s is not supported", p, k);
    if (c.arch == Arch::MISTRAL && j.contains("sliding_window") && j["sliding_window"].is_number_integer() &&
        j["sliding_window"].get<int64_t>() < c.max_position_embeddings)
        LOTA_LOG_WARN("%s: sliding_window = %lld: lota attends to the whole context, so sequences longer than the "
                      "window give other numbers than the sliding-window model", p,
                      (long long)j["sliding_window"].get<int64_t>());
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
    // Bounds far above any real model keep every product of sizes (vocab·hidden, positions·head_dim, ...)
    // inside int64.
    check_at_most(c.hidden_size, kMaxWidth, "hidden_size", p);
    check_at_most(c.intermediate_size, kMaxWidth, "intermediate_size", p);
    check_at_most(c.num_hidden_layers, kMaxWidth, "num_hidden_layers", p);
    check_at_most(c.num_attention_heads, kMaxWidth, "num_attention_heads", p);
    check_at_most(c.num_key_value_heads, kMaxWidth, "num_key_value_heads", p);
    check_at_most(c.vocab_size, kMaxCount, "vocab_size", p);
    check_at_most(c.max_position_embeddings, kMaxCount, "max_position_embeddings", p);
    LOTA_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 &&
                   c.num_attention_heads % c.num_key_value_heads == 0,
               "%s: num_attention_heads (%lld) must be a positive multiple of num_key_value_heads (%lld)", p,
               (long long)c.num_attention_heads, (long long)c.num_key_value_heads);
    int64_t default_head_dim = c.hidden_size / c.num_attention_heads;
    c.head_dim = get_int(j, "head_dim", path, default_head_dim, false);
    check_at_most(c.head_dim, kMaxWidth, "head_dim", p);
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
    c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", path, false);
    c.attention_bias = c.arch == Arch::QWEN2 ? true : get_bool(j, "attention_bias", path, false);
    c.qk_norm = c.arch == Arch::QWEN3;
    parse_rope(j, path, c);
    check_numerics_keys(j, path, c);
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
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["hidden_act"] = "silu";
    j["initializer_range"] = 0.02;
    j["torch_dtype"] = c.torch_dtype;
    if (j.contains("dtype")) j["dtype"] = c.torch_dtype;  // transformers 5's name
    if (c.arch == Arch::LLAMA || c.arch == Arch::QWEN3) j["attention_bias"] = c.attention_bias;
    if (c.arch == Arch::LLAMA) j["mlp_bias"] = false;
    if (c.arch == Arch::MISTRAL || c.arch == Arch::QWEN2 || c.arch == Arch::QWEN3) j["sliding_window"] = nullptr;
    if (c.arch == Arch::QWEN2 || c.arch == Arch::QWEN3) j["use_sliding_window"] = false;
    nlohmann::json rope = {{"rope_type", c.rope_scaling.type.empty() ? "default" : c.rope_scaling.type}};
    if (c.rope_scaling.type == "llama3")
        rope.update({{"factor", c.rope_scaling.factor},
                     {"low_freq_factor", c.rope_scaling.low_freq_factor},
                     {"high_freq_factor", c.rope_scaling.high_freq_factor},
                     {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}});
    if (c.rope_parameters_layout) {  // transformers 5: everything in rope_parameters
        j.erase("rope_theta");
        j.erase("rope_scaling");
        rope["rope_theta"] = c.rope_theta;
        j["rope_parameters"] = rope;
    } else {  // transformers 4: rope_theta and rope_scaling at the top level
        j.erase("rope_parameters");
        j["rope_theta"] = c.rope_theta;
        j["rope_scaling"] = c.rope_scaling.type.empty() ? nlohmann::json(nullptr) : rope;
    }
    if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
    if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
    else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
    if (!c.quantization_config.is_null()) j["quantization_config"] = c.quantization_config;
    return j;
}

}  // namespace lota::io
