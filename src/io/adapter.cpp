// peft adapter directories: reader, writer and the check against a model's modules (adapter.h).
#include "io/adapter.h"

#include <cmath>
#include <set>
#include <utility>

#include <ATen/ATen.h>

#include "io/finite_check.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/strfmt.h"

namespace lota::io {
namespace {

const char* const PREFIX = "base_model.model.";
const char* const CONFIG_FILE = "adapter_config.json";
const char* const MODEL_FILE = "adapter_model.safetensors";
const char* const LOTA_BLOCK = "lota";  ///< adapter_config.json key of the LoTA-QAF settings
const char* const QALORA_BLOCK = "qalora";  ///< adapter_config.json key of the QA-LoRA settings

std::string shape_str(const at::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
}

/// The one table of method names (adapter_method_parse, adapter_method_name).
struct MethodName {
    AdapterMethod method;
    const char* name;
};
const MethodName METHOD_NAMES[] = {
    {AdapterMethod::LOTA, "lota"}, {AdapterMethod::LORA, "lora"}, {AdapterMethod::QALORA, "qalora"}};

std::string short_name(const std::string& module) {
    const size_t dot = module.rfind('.');
    return dot == std::string::npos ? module : module.substr(dot + 1);
}

}  // namespace

AdapterMethod adapter_method_parse(const std::string& name, const std::string& what) {
    std::string known;
    for (const MethodName& m : METHOD_NAMES) {
        if (name == m.name) return m.method;
        known += (known.empty() ? "" : ", ") + std::string(m.name);
    }
    LOTA_FAIL("%s: unknown adapter method '%s' (expected one of: %s)", what.c_str(), name.c_str(), known.c_str());
}

const char* adapter_method_name(AdapterMethod method) {
    for (const MethodName& m : METHOD_NAMES)
        if (m.method == method) return m.name;
    LOTA_FAIL("adapter method %d has no name", static_cast<int>(method));
}

AdapterConfig adapter_config_from_json(const nlohmann::json& j, const std::string& file) {
    LOTA_CHECK(j.is_object(), "%s: expected a JSON object", file.c_str());
    AdapterConfig c;
    try {
        LOTA_CHECK(j.value("peft_type", std::string("LORA")) == "LORA", "%s: peft_type must be \"LORA\", got %s",
                   file.c_str(), j["peft_type"].dump().c_str());
        LOTA_CHECK(j.contains("r"), "%s: missing key \"r\"", file.c_str());
        c.r = json_int(j.at("r"), file + ": \"r\"", 1, INT32_MAX);
        c.lora_alpha = j.value("lora_alpha", 2.0 * (double)c.r);
        c.lora_dropout = j.value("lora_dropout", 0.0);
        c.base_model = j.value("base_model_name_or_path", std::string());
        if (j.contains("target_modules") && j["target_modules"].is_array())
            c.target_modules = j["target_modules"].get<std::vector<std::string>>();
        // The "lota" block is what marks a LoTA-QAF adapter; peft's own configs are LoRA.
        c.method = AdapterMethod::LORA;
        if (j.contains(LOTA_BLOCK)) {
            const auto& l = j[LOTA_BLOCK];
            LOTA_CHECK(l.is_object(), "%s: \"lota\" must be an object", file.c_str());
            c.method = AdapterMethod::LOTA;
            LOTA_CHECK(l.contains("omega"), "%s: \"lota\" has no \"omega\"", file.c_str());
            c.omega = l.at("omega").get<double>();
            c.bits = static_cast<int>(json_int_or(l, "bits", 0, file + ": lota.bits", 0, 64));
            c.group_size =
                static_cast<int>(json_int_or(l, "group_size", 0, file + ": lota.group_size", 0, INT32_MAX));
            for (const auto& [k, v] : l.items())
                if (k != "omega" && k != "bits" && k != "group_size") c.lota_extra[k] = v;
        } else if (j.contains(QALORA_BLOCK)) {
            const auto& q = j[QALORA_BLOCK];
            LOTA_CHECK(q.is_object(), "%s: \"qalora\" must be an object", file.c_str());
            c.method = AdapterMethod::QALORA;
            LOTA_CHECK(c.lora_dropout == 0.0, "%s: QA-LoRA adapters run merged and have no dropout; lora_dropout "
                       "must be 0, got %g", file.c_str(), c.lora_dropout);
            c.bits = static_cast<int>(json_int_or(q, "bits", 0, file + ": qalora.bits", 0, 64));
            c.group_size =
                static_cast<int>(json_int_or(q, "group_size", 0, file + ": qalora.group_size", 0, INT32_MAX));
            c.qalora_pooling = q.value("pooling", std::string("mean"));
            LOTA_CHECK(c.group_size > 0, "%s: \"qalora\" needs \"group_size\" > 0 (the pooling group), got %d",
                       file.c_str(), c.group_size);
            LOTA_CHECK(c.qalora_pooling == "mean" || c.qalora_pooling == "sum",
                       "%s: qalora.pooling must be \"mean\" or \"sum\", got \"%s\"", file.c_str(),
                       c.qalora_pooling.c_str());
        } else {
            LOTA_CHECK(!j.value("use_qalora", false),
                       "%s: a peft QA-LoRA adapter (\"use_qalora\": true) without lota's \"qalora\" block is not "
                       "supported: peft's scale of the pooled input has differed between versions, so its numbers "
                       "cannot be read unambiguously (train it with `lota train --method qalora`)",
                       file.c_str());
        }
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: bad value: %s", file.c_str(), e.what());
    }
    LOTA_CHECK(c.r >= 1 && c.r <= 65536, "%s: r must be in [1, 65536], got %lld", file.c_str(), (long long)c.r);
    LOTA_CHECK(c.method != AdapterMethod::LOTA || (std::isfinite(c.omega) && c.omega > 0 && c.omega < (double)c.r),
               "%s: lota.omega must be in (0, r = %lld), got %g (a code moves where |A·B| > omega, and |A·B| <= r)",
               file.c_str(), (long long)c.r, c.omega);
    LOTA_CHECK(std::isfinite(c.lora_alpha) && c.lora_alpha > 0, "%s: lora_alpha must be a finite number > 0, got %g",
               file.c_str(), c.lora_alpha);
    return c;
}

nlohmann::json adapter_config_to_json(const AdapterConfig& c) {
    nlohmann::json j = {{"peft_type", "LORA"},
                        {"task_type", "CAUSAL_LM"},
                        {"r", c.r},
                        {"lora_alpha", c.lora_alpha},
                        {"lora_dropout", c.lora_dropout},
                        {"target_modules", c.target_modules},
                        {"base_model_name_or_path", c.base_model},
                        {"bias", "none"},
                        {"fan_in_fan_out", false},
                        {"inference_mode", true}};
    if (c.method == AdapterMethod::LOTA) {
        nlohmann::json l = c.lota_extra;
        l["method"] = "lota-qaf";
        l["omega"] = c.omega;
        l["bits"] = c.bits;
        l["group_size"] = c.group_size;
        j[LOTA_BLOCK] = l;
    }
    if (c.method == AdapterMethod::QALORA) {
        j["use_qalora"] = true;
        j["qalora_group_size"] = c.group_size;
        j[QALORA_BLOCK] = {
            {"method", "qa-lora"},
            {"pooling", c.qalora_pooling},
            {"bits", c.bits},
            {"group_size", c.group_size},
            {"formula", "y = x W + (lora_alpha / r) * pool(x) A^T B^T, pool(x)[j] = " +
                            std::string(c.qalora_pooling == "mean" ? "mean" : "sum") +
                            " of input features j*group_size .. (j+1)*group_size-1; merges exactly into the GPTQ "
                            "model as the per-group offset F = (lora_alpha / r) * c * (B A)^T / scales "
                            "(c = 1/group_size for mean, 1 for sum), W = scales * (Q - zeros + F)"}};
    }
    return j;
}

Adapter adapter_read(const std::string& dir) {
    const std::string cfg_path = dir + "/" + CONFIG_FILE, st_path = dir + "/" + MODEL_FILE;
    LOTA_CHECK(path_exists(cfg_path), "%s: not an adapter directory (no %s)", dir.c_str(), CONFIG_FILE);
    LOTA_CHECK(path_exists(st_path), "%s: not an adapter directory (no %s)", dir.c_str(), MODEL_FILE);
    nlohmann::json j;
    try {
        j = json_parse(file_read_text(cfg_path), cfg_path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", cfg_path.c_str(), e.what());
    }
    Adapter a;
    a.config = adapter_config_from_json(j, cfg_path);
    const bool lota = a.config.method == AdapterMethod::LOTA;
    SafetensorsFile f(st_path);
    const std::string pre = PREFIX;
    for (const auto& e : f.entries()) {
        const std::string& n = e.name;
        const std::string suf_a = ".lora_A.weight", suf_b = ".lora_B.weight";
        const bool is_a = n.size() > suf_a.size() && n.compare(n.size() - suf_a.size(), suf_a.size(), suf_a) == 0;
        const bool is_b = n.size() > suf_b.size() && n.compare(n.size() - suf_b.size(), suf_b.size(), suf_b) == 0;
        LOTA_CHECK(n.rfind(pre, 0) == 0 && (is_a || is_b),
                   "%s: unexpected tensor '%s' (expected base_model.model.<module>.lora_A.weight / lora_B.weight)",
                   st_path.c_str(), n.c_str());
        const std::string module = n.substr(pre.size(), n.size() - pre.size() - suf_a.size());
        at::Tensor t = f.load(n);
        LOTA_CHECK(t.dim() == 2 && t.numel() > 0, "%s: tensor '%s' has shape %s, expected a non-empty 2-D tensor",
                   st_path.c_str(), n.c_str(), shape_str(t).c_str());
        if (lota) {
            LOTA_CHECK(t.scalar_type() == at::kChar, "%s: tensor '%s' is %s, expected I8 (LoTA ternary adapter)",
                       st_path.c_str(), n.c_str(), e.dtype.c_str());
            LOTA_CHECK(t.abs().max().item<int>() <= 1, "%s: tensor '%s' has values outside {-1, 0, 1}",
                       st_path.c_str(), n.c_str());
        } else {
            LOTA_CHECK(at::isFloatingType(t.scalar_type()), "%s: tensor '%s' is %s, expected a float type (LoRA)",
                       st_path.c_str(), n.c_str(), e.dtype.c_str());
            tensor_check_finite(t, st_path, n);
        }
        auto& m = a.modules[module];
        (is_a ? m.lora_a : m.lora_b) = t;
        const int64_t r_dim = is_a ? t.size(0) : t.size(1);
        LOTA_CHECK(r_dim == a.config.r, "%s: tensor '%s' has shape %s: rank %lld, but %s says r = %lld",
                   st_path.c_str(), n.c_str(), shape_str(t).c_str(), (long long)r_dim, CONFIG_FILE,
                   (long long)a.config.r);
    }
    LOTA_CHECK(!a.modules.empty(), "%s: no adapter tensors", st_path.c_str());
    for (const auto& [name, m] : a.modules)
        LOTA_CHECK(m.lora_a.defined() && m.lora_b.defined(), "%s: module '%s' has lora_%s.weight but no lora_%s.weight",
                   st_path.c_str(), name.c_str(), m.lora_a.defined() ? "A" : "B", m.lora_a.defined() ? "B" : "A");
    return a;
}

void adapter_write(const std::string& dir, const Adapter& adapter) {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& [name, m] : adapter.modules) {
        tensors.emplace_back(PREFIX + name + ".lora_A.weight", m.lora_a.contiguous());
        tensors.emplace_back(PREFIX + name + ".lora_B.weight", m.lora_b.contiguous());
    }
    safetensors_write(dir + "/" + MODEL_FILE, tensors, {{"format", "pt"}});
    const std::string text = adapter_config_to_json(adapter.config).dump(2) + "\n";
    file_write_atomic(dir + "/" + CONFIG_FILE, text.data(), text.size());
}

void adapter_check(const Adapter& adapter, const std::vector<AdapterTarget>& targets, int bits, int group_size,
                   const std::string& dir) {
    const AdapterConfig& c = adapter.config;
    if (c.method == AdapterMethod::LOTA) {
        LOTA_CHECK(c.bits == 0 || c.bits == bits, "%s: adapter was trained on a %d-bit model, this model has %d bits",
                   dir.c_str(), c.bits, bits);
        LOTA_CHECK(c.group_size == 0 || c.group_size == group_size,
                   "%s: adapter was trained with group size %d, this model has group size %d", dir.c_str(),
                   c.group_size, group_size);
    }
    if (c.method == AdapterMethod::QALORA) {
        LOTA_CHECK(c.bits == 0 || c.bits == bits, "%s: QA-LoRA adapter was trained on a %d-bit model, this model has "
                   "%d bits", dir.c_str(), c.bits, bits);
        LOTA_CHECK(c.group_size == group_size,
                   "%s: QA-LoRA adapter pools groups of %d inputs, this model is quantized with group size %d (the "
                   "adapter merges only into its own quantization groups)", dir.c_str(), c.group_size, group_size);
    }
    std::map<std::string, const AdapterTarget*> by_name;
    for (const auto& t : targets) by_name[t.name] = &t;
    for (const auto& [name, m] : adapter.modules) {
        auto it = by_name.find(name);
        LOTA_CHECK(it != by_name.end(), "%s: adapter module '%s' does not exist in the model (or is not adaptable)",
                   dir.c_str(), name.c_str());
        const int64_t K = it->second->in_features, N = it->second->out_features;
        // QA-LoRA's lora_A sees the input pooled per quantization group: K / group_size features.
        const bool pooled = c.method == AdapterMethod::QALORA;
        LOTA_CHECK(!pooled || (c.group_size > 0 && K % c.group_size == 0),
                   "%s: module '%s' has %lld inputs, not a multiple of the QA-LoRA group size %d", dir.c_str(),
                   name.c_str(), (long long)K, c.group_size);
        const int64_t K_a = pooled ? K / c.group_size : K;
        LOTA_CHECK(m.lora_a.size(0) == c.r && m.lora_a.size(1) == K_a,
                   "%s: tensor '%s%s.lora_A.weight' has shape %s, expected [%lld, %lld] (r=%lld, in=%lld%s)",
                   dir.c_str(), PREFIX, name.c_str(), shape_str(m.lora_a).c_str(), (long long)c.r, (long long)K_a,
                   (long long)c.r, (long long)K, pooled ? strfmt(" / group size %d", c.group_size).c_str() : "");
        LOTA_CHECK(m.lora_b.size(0) == N && m.lora_b.size(1) == c.r,
                   "%s: tensor '%s%s.lora_B.weight' has shape %s, expected [%lld, %lld] (out=%lld, r=%lld)", dir.c_str(),
                   PREFIX, name.c_str(), shape_str(m.lora_b).c_str(), (long long)N, (long long)c.r, (long long)N,
                   (long long)c.r);
    }
    const std::set<std::string> wanted(c.target_modules.begin(), c.target_modules.end());
    for (const auto& t : targets)
        LOTA_CHECK(!wanted.count(short_name(t.name)) || adapter.modules.count(t.name),
                   "%s: adapter_config.json targets '%s' but the adapter has no tensors for module '%s'", dir.c_str(),
                   short_name(t.name).c_str(), t.name.c_str());
}

}  // namespace lota::io
