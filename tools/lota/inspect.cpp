// lota inspect: architecture, parameter count, dtypes and shapes of a model directory
// (and quantization settings when present); --json prints it all as one JSON object.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "io/hf_config.h"
#include "io/model_files.h"

namespace {

struct InspectOptions {
    std::string model;
    bool json = false;
};

int run_inspect(const InspectOptions& o) {
    lota::io::ModelConfig c = lota::io::hf_config_read(o.model + "/config.json");
    lota::io::ModelFiles files(o.model);
    nlohmann::ordered_json r;
    r["model"] = o.model;
    r["architecture"] = c.raw["architectures"].is_array() ? c.raw["architectures"][0] : nlohmann::json(lota::io::arch_name(c.arch));
    r["hidden_size"] = c.hidden_size;
    r["layers"] = c.num_hidden_layers;
    r["heads"] = c.num_attention_heads;
    r["kv_heads"] = c.num_key_value_heads;
    r["head_dim"] = c.head_dim;
    r["intermediate_size"] = c.intermediate_size;
    r["vocab_size"] = c.vocab_size;
    r["tie_word_embeddings"] = c.tie_word_embeddings;
    r["rope_scaling"] = c.rope_scaling.type.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.rope_scaling.type);
    int64_t params = 0;
    std::map<std::string, int64_t> by_dtype;
    nlohmann::ordered_json tensors = nlohmann::ordered_json::object();
    for (const auto& name : files.names()) {
        const auto& e = files.entry(name);
        int64_t n = 1;
        for (int64_t d : e.shape) n *= d;
        params += n;
        by_dtype[e.dtype] += n;
        tensors[name] = {{"dtype", e.dtype}, {"shape", e.shape}};
    }
    r["tensor_elements"] = params;
    r["dtypes"] = by_dtype;
    r["size_on_disk_bytes"] = files.data_bytes();
    r["quantization"] = c.quantization_config;
    // Bits per weight of the quantized linears: every stored byte of their qweight/qzeros/scales/
    // g_idx (+ LoTA offsets) over their K·N weights.
    int64_t qweights = 0, qbytes = 0;
    if (!c.quantization_config.is_null()) {
        const int bits = c.quantization_config.value("bits", 0);
        for (const auto& name : files.names()) {
            const auto& e = files.entry(name);
            const std::string suffix = name.substr(name.rfind('.') + 1);
            if (suffix == "qweight" && bits > 0 && e.shape.size() == 2) qweights += e.shape[0] * 32 / bits * e.shape[1];
            if (suffix == "qweight" || suffix == "qzeros" || suffix == "scales" || suffix == "g_idx" ||
                suffix == "lota_offset")
                qbytes += (int64_t)(e.end - e.begin);
        }
        r["quantized_weights"] = qweights;
        r["bits_per_weight"] = qweights > 0 ? 8.0 * qbytes / qweights : 0.0;
    }
    if (o.json) {
        r["tensors"] = tensors;
        lota::cli::result_print(true, r, "");
        return 0;
    }
    std::printf("model          %s\n", o.model.c_str());
    std::printf("architecture   %s\n", r["architecture"].get<std::string>().c_str());
    std::printf("shape          hidden %lld, layers %lld, heads %lld (kv %lld, head_dim %lld), mlp %lld, vocab %lld\n",
                (long long)c.hidden_size, (long long)c.num_hidden_layers, (long long)c.num_attention_heads,
                (long long)c.num_key_value_heads, (long long)c.head_dim, (long long)c.intermediate_size,
                (long long)c.vocab_size);
    std::printf("embeddings     %s\n", c.tie_word_embeddings ? "tied" : "separate LM head");
    std::printf("parameters     %.3f M stored elements\n", params / 1e6);
    for (const auto& [dt, n] : by_dtype) std::printf("  %-6s       %lld\n", dt.c_str(), (long long)n);
    std::printf("size on disk   %.2f MiB\n", files.data_bytes() / 1048576.0);
    if (!c.quantization_config.is_null()) {
        const auto& q = c.quantization_config;
        std::printf("quantization   %s, %d bits, group size %d, act-order %s, %s\n",
                    q.value("quant_method", std::string("?")).c_str(), q.value("bits", 0), q.value("group_size", 0),
                    q.value("desc_act", false) ? "yes" : "no", q.value("sym", false) ? "symmetric" : "asymmetric");
        std::printf("bits/weight    %.3f over %.3f M quantized weights (codes + zeros + scales + g_idx)\n",
                    r["bits_per_weight"].get<double>(), qweights / 1e6);
    }
    for (const auto& [name, t] : tensors.items())
        std::printf("  %-56s %-5s %s\n", name.c_str(), t["dtype"].get<std::string>().c_str(), t["shape"].dump().c_str());
    return 0;
}

LOTA_COMMAND("inspect", "Show a model's architecture, parameters, dtypes and shapes", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<InspectOptions>();
    lota::cli::add_model_flag(sub, o->model, "dense, GPTQ or merged LoTA");
    lota::cli::add_json_flag(sub, o->json);
    return [o] { return run_inspect(*o); };
});

}  // namespace
