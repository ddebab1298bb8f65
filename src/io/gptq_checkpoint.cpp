// GPTQ checkpoint directory reader/writer (see gptq_checkpoint.h for the layout).
#include "io/gptq_checkpoint.h"

#include <cctype>
#include <filesystem>

#include <ATen/ATen.h>

#include "io/finite_check.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "util/check.h"
#include "util/json_read.h"
#include "util/log.h"
#include "util/version.h"

namespace lota::io {
namespace fs = std::filesystem;
namespace {

const char* const LINEAR_SUFFIXES[] = {".qweight", ".qzeros", ".scales", ".g_idx", ".bias", ".lota_offset"};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <typename T>
T json_get(const nlohmann::json& j, const char* key, T fallback, const std::string& file) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    try {
        return j[key].get<T>();
    } catch (const nlohmann::json::exception&) {
        LOTA_FAIL("%s: key '%s' has the wrong type (%s)", file.c_str(), key, j[key].dump().c_str());
    }
}

void check_shape(const at::Tensor& t, const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& want,
                 int64_t K, int64_t N, const GptqConfig& c, const std::string& file) {
    LOTA_CHECK(t.defined(), "%s: tensor '%s' is missing", file.c_str(), name.c_str());
    LOTA_CHECK(t.sizes().vec() == want,
               "%s: tensor '%s' has shape %s, expected %s (in=%lld, out=%lld, bits=%d, group_size=%d from "
               "quantize_config)",
               file.c_str(), name.c_str(), shape_str(t.sizes().vec()).c_str(), shape_str(want).c_str(), (long long)K,
               (long long)N, c.bits, c.group_size);
    LOTA_CHECK(t.scalar_type() == dtype, "%s: tensor '%s' has dtype %s, expected %s", file.c_str(), name.c_str(),
               c10::toString(t.scalar_type()), c10::toString(dtype));
}

nlohmann::json read_json(const fs::path& p) {
    try {
        return json_parse(file_read_text(p.string()), p.string());
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: invalid JSON: %s", p.string().c_str(), e.what());
    }
}

// Numeric components of a version string ("7.0.0", "1.4.3.dev0" -> 7,0,0 / 1,4,3).
std::vector<int> version_parts(const std::string& v) {
    std::vector<int> parts;
    size_t i = 0;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
        int x = 0;
        while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) x = x * 10 + (v[i++] - '0');
        parts.push_back(x);
        if (i < v.size() && v[i] == '.') ++i;
    }
    return parts;
}

bool version_less(const std::string& a, const std::string& b) { return version_parts(a) < version_parts(b); }

const char* qzeros_3bit_name(Qzeros3Bit q) { return q == Qzeros3Bit::WHOLE_WORD ? "whole_word" : "per_field"; }

// meta.quantizer entries ("name:version", or a bare name), lower-cased names.
std::vector<std::pair<std::string, std::string>> quantizers_of(const nlohmann::json& j) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!j.contains("meta") || !j["meta"].is_object() || !j["meta"].contains("quantizer")) return out;
    nlohmann::json q = j["meta"]["quantizer"];
    if (!q.is_array()) q = nlohmann::json::array({q});
    for (const auto& e : q) {
        if (!e.is_string()) continue;
        std::string s = e.get<std::string>(), name = s, ver;
        const size_t colon = s.find(':');
        if (colon != std::string::npos) name = s.substr(0, colon), ver = s.substr(colon + 1);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.emplace_back(name, ver);
    }
    return out;
}

// The 3-bit v1 zero packing of a file without "qzeros_3bit", from its producers.
Qzeros3Bit qzeros_3bit_from_producers(const nlohmann::json& j, const GptqConfig& c, const std::string& file) {
    const auto producers = quantizers_of(j);
    bool bare_lota = false;
    for (const auto& [name, ver] : producers) {
        if (name == "gptqmodel" && !ver.empty()) {
            LOTA_CHECK(c.bits != 3 || c.checkpoint_format != "gptq" || !version_less(ver, GPTQMODEL_CONVENTIONS_VERSION),
                       "%s: 3-bit v1 zero points written by GPTQModel %s use word constants that lota does not read "
                       "(GPTQModel >= %s packs them per field); re-save the checkpoint with a current GPTQModel",
                       file.c_str(), ver.c_str(), GPTQMODEL_CONVENTIONS_VERSION);
            return Qzeros3Bit::PER_FIELD;
        }
        if (name == "lota" && ver.empty()) bare_lota = true;
    }
    return bare_lota ? Qzeros3Bit::WHOLE_WORD : Qzeros3Bit::UNSTATED;
}

void write_text(const fs::path& p, const std::string& s) { file_write_atomic(p.string(), s.data(), s.size()); }

// Checks one linear's tensors against in/out and the config (see gptq_linear_read).
void check_linear(const GptqLinearTensors& t, const std::string& prefix, int64_t K, int64_t N, const GptqConfig& c,
                  const std::string& file) {
    const int b = c.bits;
    LOTA_CHECK(K > 0 && N > 0, "%s: linear '%s' has in=%lld, out=%lld", file.c_str(), prefix.c_str(), (long long)K,
               (long long)N);
    LOTA_CHECK(c.group_size == -1 || K % c.group_size == 0,
               "%s: group_size %d (quantize_config) does not divide in_features %lld of '%s'", file.c_str(),
               c.group_size, (long long)K, prefix.c_str());
    LOTA_CHECK(K * b % 32 == 0 && N * b % 32 == 0,
               "%s: linear '%s' with in=%lld, out=%lld cannot be packed at %d bits (both times bits must be a "
               "multiple of 32)",
               file.c_str(), prefix.c_str(), (long long)K, (long long)N, b);
    const int64_t G = c.group_size == -1 ? 1 : K / c.group_size;
    check_shape(t.qweight, prefix + ".qweight", at::kInt, {K * b / 32, N}, K, N, c, file);
    check_shape(t.qzeros, prefix + ".qzeros", at::kInt, {G, N * b / 32}, K, N, c, file);
    check_shape(t.scales, prefix + ".scales", at::kHalf, {G, N}, K, N, c, file);
    check_shape(t.g_idx, prefix + ".g_idx", at::kInt, {K}, K, N, c, file);
    if (t.bias.defined()) {
        LOTA_CHECK(t.bias.sizes().vec() == std::vector<int64_t>{N}, "%s: tensor '%s.bias' has shape %s, expected [%lld]",
                   file.c_str(), prefix.c_str(), shape_str(t.bias.sizes().vec()).c_str(), (long long)N);
        LOTA_CHECK(at::isFloatingType(t.bias.scalar_type()),
                   "%s: tensor '%s.bias' has dtype %s, expected a float dtype", file.c_str(), prefix.c_str(),
                   c10::toString(t.bias.scalar_type()));
    }
    LOTA_CHECK(t.lota_offset.defined() == c.lota_offset,
               "%s: tensor '%s.lota_offset' is %s but quantize_config says \"lota_offset\": %s", file.c_str(),
               prefix.c_str(), t.lota_offset.defined() ? "present" : "missing", c.lota_offset ? "true" : "false");
    if (t.lota_offset.defined()) check_shape(t.lota_offset, prefix + ".lota_offset", at::kFloat, {G, N}, K, N, c, file);
    FiniteCheck finite;  // scales and offsets are small (one per group): checked here, on the host
    finite.add(t.scales, file, prefix + ".scales");
    finite.add(t.bias, file, prefix + ".bias");
    finite.add(t.lota_offset, file, prefix + ".lota_offset");
    finite.check();
    const int64_t lo = t.g_idx.min().item<int64_t>(), hi = t.g_idx.max().item<int64_t>();
    LOTA_CHECK(lo >= 0 && hi < G, "%s: tensor '%s.g_idx' has values in [%lld, %lld], expected [0, %lld)", file.c_str(),
               prefix.c_str(), (long long)lo, (long long)hi, (long long)G);
}

}  // namespace

GptqConfig gptq_config_from_json(const nlohmann::json& j, const std::string& file) {
    LOTA_CHECK(j.is_object(), "%s: quantization config must be a JSON object", file.c_str());
    GptqConfig c;
    c.bits = static_cast<int>(json_int_or(j, "bits", -1, file + ": \"bits\"", -1, 64));
    LOTA_CHECK(c.bits == 2 || c.bits == 3 || c.bits == 4 || c.bits == 8,
               "%s: bits = %d is not supported (expected 2, 3, 4 or 8)", file.c_str(), c.bits);
    c.group_size = static_cast<int>(json_int_or(j, "group_size", -1, file + ": \"group_size\"", -1, INT32_MAX));
    LOTA_CHECK(c.group_size == -1 || c.group_size > 0, "%s: group_size = %d, expected -1 or a positive size",
               file.c_str(), c.group_size);
    c.desc_act = json_get<bool>(j, "desc_act", false, file);
    c.sym = json_get<bool>(j, "sym", true, file);
    const std::string method = json_get<std::string>(j, "quant_method", "gptq", file);
    LOTA_CHECK(method == "gptq", "%s: quant_method \"%s\" is not supported (expected \"gptq\")", file.c_str(),
               method.c_str());
    c.checkpoint_format = json_get<std::string>(j, "checkpoint_format", "gptq", file);
    LOTA_CHECK(c.checkpoint_format == "gptq" || c.checkpoint_format == "gptq_v2",
               "%s: checkpoint_format \"%s\" is not supported (expected \"gptq\" or \"gptq_v2\")", file.c_str(),
               c.checkpoint_format.c_str());
    c.lota_offset = json_get<bool>(j, "lota_offset", false, file);
    const std::string q3 = json_get<std::string>(j, "qzeros_3bit", "", file);
    LOTA_CHECK(q3.empty() || q3 == "per_field" || q3 == "whole_word",
               "%s: qzeros_3bit \"%s\" is not known (expected \"per_field\" or \"whole_word\")", file.c_str(),
               q3.c_str());
    c.qzeros_3bit = q3 == "per_field"    ? Qzeros3Bit::PER_FIELD
                    : q3 == "whole_word" ? Qzeros3Bit::WHOLE_WORD
                                         : qzeros_3bit_from_producers(j, c, file);
    for (auto& [k, v] : j.items())
        if (k != "bits" && k != "group_size" && k != "desc_act" && k != "sym" && k != "quant_method" &&
            k != "checkpoint_format" && k != "lota_offset" && k != "qzeros_3bit")
            c.extra[k] = v;
    return c;
}

nlohmann::json gptq_config_to_json(const GptqConfig& c) {
    nlohmann::json j = c.extra;
    j["bits"] = c.bits;
    j["group_size"] = c.group_size;
    j["desc_act"] = c.desc_act;
    j["sym"] = c.sym;
    j["quant_method"] = "gptq";
    j["checkpoint_format"] = c.checkpoint_format;
    if (c.lota_offset) j["lota_offset"] = true;
    if (c.bits == 3 && c.checkpoint_format == "gptq" && c.qzeros_3bit != Qzeros3Bit::UNSTATED)
        j["qzeros_3bit"] = qzeros_3bit_name(c.qzeros_3bit);
    if (c.bits == 3 && c.checkpoint_format == "gptq" && c.qzeros_3bit == Qzeros3Bit::UNSTATED)
        return j;  // tensors as some other tool wrote them: claim no conventions for them
    nlohmann::json quantizers = {std::string("gptqmodel:") + GPTQMODEL_CONVENTIONS_VERSION,
                                 std::string("lota:") + VERSION};
    for (const auto& [name, ver] : quantizers_of(c.extra))
        if (name != "gptqmodel" && name != "lota" && !ver.empty()) quantizers.push_back(name + ":" + ver);
    if (!j.contains("meta") || !j["meta"].is_object()) j["meta"] = nlohmann::json::object();
    j["meta"]["quantizer"] = quantizers;
    return j;
}

std::optional<GptqConfig> gptq_config_read(const std::string& dir) {
    const fs::path qc_path = fs::path(dir) / "quantize_config.json";
    if (fs::exists(qc_path)) return gptq_config_from_json(read_json(qc_path), qc_path.string());
    const fs::path cfg_path = fs::path(dir) / "config.json";
    if (!fs::exists(cfg_path)) return std::nullopt;
    const nlohmann::json cfg = read_json(cfg_path);
    if (!cfg.contains("quantization_config") || cfg["quantization_config"].is_null()) return std::nullopt;
    return gptq_config_from_json(cfg["quantization_config"], cfg_path.string());
}

GptqLinearTensors gptq_linear_read(const ModelFiles& files, const std::string& prefix, const GptqConfig& c,
                                   int64_t in_features, int64_t out_features) {
    auto optional = [&](const char* suffix) {
        return files.has(prefix + suffix) ? files.load(prefix + suffix) : at::Tensor();
    };
    GptqLinearTensors t{files.load(prefix + ".qweight"), optional(".qzeros"), optional(".scales"),
                        optional(".g_idx"),              optional(".bias"),   optional(".lota_offset")};
    const std::string& file = files.file_of(prefix + ".qweight");
    LOTA_CHECK(t.qweight.dim() == 2 && t.qweight.scalar_type() == at::kInt,
               "%s: tensor '%s.qweight' must be int32 [K*bits/32, N], got %s %s", file.c_str(), prefix.c_str(),
               c10::toString(t.qweight.scalar_type()), shape_str(t.qweight.sizes().vec()).c_str());
    // K from qweight when its rows fit the configured bits, else from g_idx (which does not
    // depend on bits): a wrong bits in the config is then reported as a qweight mismatch.
    const int64_t rows_bits = t.qweight.size(0) * 32;
    const bool k_from_qweight = rows_bits % c.bits == 0 || !t.g_idx.defined() || t.g_idx.dim() != 1;
    const int64_t K = in_features >= 0 ? in_features : k_from_qweight ? rows_bits / c.bits : t.g_idx.size(0);
    const int64_t N = out_features >= 0 ? out_features : t.qweight.size(1);
    if (!t.g_idx.defined()) {  // old AutoGPTQ files without act-order omit g_idx
        LOTA_CHECK(!c.desc_act, "%s: tensor '%s.g_idx' is missing but desc_act is true", file.c_str(), prefix.c_str());
        const int64_t g = c.group_size == -1 ? K : c.group_size;
        t.g_idx = at::arange(K, at::kInt).div(g, "floor").to(at::kInt);
    }
    check_linear(t, prefix, K, N, c, file);
    return t;
}

bool gptq_checkpoint_detect(const std::string& dir) {
    if (fs::exists(fs::path(dir) / "quantize_config.json")) return true;
    const fs::path cfg = fs::path(dir) / "config.json";
    if (!fs::exists(cfg)) return false;
    const nlohmann::json j = read_json(cfg);
    return j.contains("quantization_config") && j["quantization_config"].is_object() &&
           j["quantization_config"].value("quant_method", "") == "gptq";
}

GptqCheckpoint gptq_checkpoint_read(const std::string& dir) {
    GptqCheckpoint ck;
    const std::optional<GptqConfig> quant = gptq_config_read(dir);
    LOTA_CHECK(quant.has_value(),
               "%s: not a GPTQ checkpoint (no quantize_config.json and no quantization_config in config.json)",
               dir.c_str());
    ck.quant = *quant;
    const fs::path cfg_path = fs::path(dir) / "config.json";
    if (fs::exists(cfg_path)) ck.config = read_json(cfg_path);
    const ModelFiles files(dir);
    const std::vector<std::string> names = files.names();
    for (const auto& name : names)
        if (ends_with(name, ".qweight")) {
            const std::string p = name.substr(0, name.size() - std::string(".qweight").size());
            ck.linears[p] = gptq_linear_read(files, p, ck.quant);
        }
    LOTA_CHECK(!ck.linears.empty(), "%s: GPTQ checkpoint has no '*.qweight' tensors", dir.c_str());
    for (const auto& name : names) {
        bool part_of_linear = false;
        for (const char* s : LINEAR_SUFFIXES)
            if (ends_with(name, s) && ck.linears.count(name.substr(0, name.size() - std::string(s).size())))
                part_of_linear = true;
        if (!part_of_linear) ck.tensors[name] = files.load(name);
    }
    LOTA_LOG_DEBUG("%s: GPTQ checkpoint, %zu quantized linears, %zu other tensors, %d bits, group %d", dir.c_str(),
                   ck.linears.size(), ck.tensors.size(), ck.quant.bits, ck.quant.group_size);
    return ck;
}

std::vector<std::pair<std::string, at::Tensor>> gptq_linear_named_tensors(const std::string& prefix,
                                                                          const GptqLinearTensors& t) {
    std::vector<std::pair<std::string, at::Tensor>> out = {{prefix + ".qweight", t.qweight},
                                                           {prefix + ".qzeros", t.qzeros},
                                                           {prefix + ".scales", t.scales},
                                                           {prefix + ".g_idx", t.g_idx}};
    if (t.bias.defined()) out.emplace_back(prefix + ".bias", t.bias);
    if (t.lota_offset.defined()) out.emplace_back(prefix + ".lota_offset", t.lota_offset);
    return out;
}

void gptq_config_files_write(const std::string& dir, const nlohmann::json& config, const GptqConfig& quant) {
    const nlohmann::json qc = gptq_config_to_json(quant);
    write_text(fs::path(dir) / "quantize_config.json", qc.dump(2) + "\n");
    nlohmann::json with_quant = config;
    with_quant["quantization_config"] = qc;
    write_text(fs::path(dir) / "config.json", with_quant.dump(2) + "\n");
}

void gptq_checkpoint_write(const std::string& dir, const GptqCheckpoint& ck) {
    std::vector<std::pair<std::string, at::Tensor>> all;
    for (const auto& [p, t] : ck.linears)
        for (auto& nt : gptq_linear_named_tensors(p, t)) all.push_back(std::move(nt));
    for (const auto& [name, t] : ck.tensors) all.emplace_back(name, t);
    std::error_code ec;
    fs::create_directories(dir, ec);
    LOTA_CHECK(!ec, "%s: cannot create directory: %s", dir.c_str(), ec.message().c_str());
    safetensors_write((fs::path(dir) / "model.safetensors").string(), all, {{"format", "pt"}});
    gptq_config_files_write(dir, ck.config, ck.quant);
}

}  // namespace lota::io
