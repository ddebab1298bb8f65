// Random model initialisation in HF format (see init.h). Weights are drawn from one seeded
// generator in a fixed order, so the same options always give the same bytes. Linear and
// embedding weights ~ N(0, 1/fan_in) keep activations O(1), which makes parity tests sharp;
// norm weights ~ 1 + N(0, 0.1²) and biases ~ N(0, 0.1²) so that they matter too.
#include "model/init.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <new>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "io/hf_config.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "model/arch.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"
#include "util/strfmt.h"

namespace lota::model {
namespace {

nlohmann::json read_json(const std::string& path) {
    try {
        return json_parse(io::file_read_text(path), path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", path.c_str(), e.what());
    }
}

/// Vocabulary size implied by a tokenizer.json: largest id (model vocab or added tokens) + 1.
int64_t tokenizer_vocab_size(const nlohmann::json& tok, const std::string& path) {
    LOTA_CHECK(tok.contains("model") && tok["model"].contains("vocab") && tok["model"]["vocab"].is_object(),
               "%s: expected model.vocab to be an object", path.c_str());
    int64_t max_id = -1;
    for (const auto& [k, v] : tok["model"]["vocab"].items()) max_id = std::max<int64_t>(max_id, v.get<int64_t>());
    if (tok.contains("added_tokens"))
        for (const auto& t : tok["added_tokens"]) max_id = std::max<int64_t>(max_id, t.value("id", (int64_t)-1));
    return max_id + 1;
}

int64_t special_id(const nlohmann::json& tok, const nlohmann::json& tok_cfg, const char* key) {
    if (!tok_cfg.contains(key) || tok_cfg[key].is_null()) return -1;
    std::string s = tok_cfg[key].is_string() ? tok_cfg[key].get<std::string>() : tok_cfg[key].value("content", "");
    if (tok.contains("added_tokens"))
        for (const auto& t : tok["added_tokens"])
            if (t.value("content", "") == s) return t.value("id", (int64_t)-1);
    if (tok["model"]["vocab"].contains(s)) return tok["model"]["vocab"][s].get<int64_t>();
    return -1;
}

// Refuses sizes whose weights cannot fit this machine's memory before allocating anything: an
// allocation beyond it is either refused by the allocator or, with overcommit, killed later.
void memory_check(const io::ModelConfig& c, at::ScalarType store) {
    const double C = (double)c.hidden_size, D = (double)c.head_dim, L = (double)c.num_hidden_layers;
    const double q = (double)c.num_attention_heads * D, kv = (double)c.num_key_value_heads * D;
    const double per_layer = C * (q + 2 * kv) + q * C + 3 * C * (double)c.intermediate_size + 4 * C + 2 * D;
    const double params = (c.tie_word_embeddings ? 1 : 2) * (double)c.vocab_size * C + L * per_layer + C;
    const double largest = std::max({(double)c.vocab_size * C, C * (double)c.intermediate_size, q * C});
    const double bytes = params * (double)c10::elementSize(store) + 4 * largest;  // + one f32 draw
    const double ram = (double)::sysconf(_SC_PHYS_PAGES) * (double)::sysconf(_SC_PAGE_SIZE);
    LOTA_CHECK(bytes <= ram,
               "init: these sizes give %.3g parameters, %.1f GiB to hold in memory, more than this machine's %.1f GiB",
               params, bytes / (1 << 30), ram / (1 << 30));
}

}  // namespace

void model_init(const InitOptions& o) {
    io::ModelConfig c;
    c.arch = io::arch_from_name(o.arch);
    c.hidden_size = o.hidden;
    c.num_hidden_layers = o.layers;
    c.num_attention_heads = o.heads;
    c.num_key_value_heads = o.kv_heads;
    c.intermediate_size = o.intermediate;
    c.head_dim = o.head_dim > 0 ? o.head_dim : o.hidden / std::max<int64_t>(o.heads, 1);
    c.vocab_size = o.vocab;
    c.tie_word_embeddings = o.tie_embeddings;
    c.attention_bias = c.arch == io::Arch::QWEN2;
    c.qk_norm = c.arch == io::Arch::QWEN3;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = c.arch == io::Arch::LLAMA ? 500000.0 : 1000000.0;
    c.max_position_embeddings = 4096;
    LOTA_CHECK(o.hidden > 0 && o.layers > 0 && o.heads > 0 && o.kv_heads > 0 && o.intermediate > 0,
               "init: sizes must be positive");
    LOTA_CHECK(o.heads % o.kv_heads == 0, "init: --heads %lld must be a multiple of --kv-heads %lld",
               (long long)o.heads, (long long)o.kv_heads);
    LOTA_CHECK(o.head_dim > 0 || o.hidden % o.heads == 0,
               "init: --hidden %lld is not divisible by --heads %lld (give --head-dim to set the head size)",
               (long long)o.hidden, (long long)o.heads);
    LOTA_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, "init: head dim %lld must be positive and even",
               (long long)c.head_dim);
    if (!o.rope_scaling.empty()) {
        LOTA_CHECK(o.rope_scaling == "llama3", "init: unsupported --rope-scaling '%s' (supported: llama3)",
                   o.rope_scaling.c_str());
        c.rope_scaling.type = "llama3";
        c.rope_scaling.factor = 8.0;
        c.max_position_embeddings = 131072;
    }
    c.torch_dtype = o.dtype == "bf16" ? "bfloat16" : o.dtype == "f16" ? "float16" : "float32";
    nlohmann::json tok, tok_cfg = nlohmann::json::object();
    if (!o.tokenizer.empty()) {
        tok = read_json(o.tokenizer + "/tokenizer.json");
        if (path_exists(o.tokenizer + "/tokenizer_config.json")) tok_cfg = read_json(o.tokenizer + "/tokenizer_config.json");
        c.vocab_size = tokenizer_vocab_size(tok, o.tokenizer + "/tokenizer.json");
        c.bos_token_id = special_id(tok, tok_cfg, "bos_token");
        int64_t eos = special_id(tok, tok_cfg, "eos_token");
        if (eos >= 0) c.eos_token_ids = {eos};
    }
    LOTA_CHECK(c.vocab_size > 0, "init: vocab size must be positive");

    const at::ScalarType store = dtype_from_name(o.dtype);
    memory_check(c, store);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    auto normal = [&](std::vector<int64_t> shape, double mean, double std) {
        try {
            at::Tensor t = at::empty(shape, at::kFloat);
            t.normal_(mean, std, gen);
            return t.to(store);
        } catch (const std::bad_alloc&) {
            LOTA_FAIL("init: out of memory allocating a tensor of shape %s", shape_str(shape).c_str());
        } catch (const c10::Error& e) {
            LOTA_FAIL("init: cannot allocate a tensor of shape %s: %s", shape_str(shape).c_str(),
                      e.what_without_backtrace());
        }
    };
    const int64_t C = c.hidden_size, D = c.head_dim;
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    tensors.emplace_back(name_embed(), normal({c.vocab_size, C}, 0.0, 1.0 / std::sqrt((double)C)));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        for (Slot s : PROJECTION_SLOTS) {
            const auto [out, in] = slot_shape(c, s);
            const std::string name = name_linear(l, s);
            tensors.emplace_back(name + ".weight", normal({out, in}, 0.0, 1.0 / std::sqrt((double)in)));
            if (slot_has_bias(c, s)) tensors.emplace_back(name + ".bias", normal({out}, 0.0, 0.1));
        }
        tensors.emplace_back(name_input_norm(l), normal({C}, 1.0, 0.1));
        tensors.emplace_back(name_post_norm(l), normal({C}, 1.0, 0.1));
        if (c.qk_norm) {
            tensors.emplace_back(name_q_norm(l), normal({D}, 1.0, 0.1));
            tensors.emplace_back(name_k_norm(l), normal({D}, 1.0, 0.1));
        }
        if (c.num_hidden_layers >= 8) LOTA_LOG_INFO("init: layer %lld/%lld", (long long)l + 1, (long long)c.num_hidden_layers);
    }
    tensors.emplace_back(name_final_norm(), normal({C}, 1.0, 0.1));
    if (!c.tie_word_embeddings)
        tensors.emplace_back(name_lm_head(), normal({c.vocab_size, C}, 0.0, 1.0 / std::sqrt((double)C)));

    StagedDir out(o.out, o.overwrite);
    // First, so that the generation_config.json written below replaces one copied from the tokenizer.
    if (!o.tokenizer.empty()) io::model_text_files_copy(o.tokenizer, out.path());
    std::string cfg_text = hf_config_to_json(c).dump(2);
    io::file_write_atomic(out.path() + "/config.json", cfg_text.data(), cfg_text.size());
    nlohmann::json gen_cfg = {{"do_sample", false}};
    if (c.bos_token_id >= 0) gen_cfg["bos_token_id"] = c.bos_token_id;
    if (!c.eos_token_ids.empty()) gen_cfg["eos_token_id"] = c.eos_token_ids[0];
    std::string gen_text = gen_cfg.dump(2);
    io::file_write_atomic(out.path() + "/generation_config.json", gen_text.data(), gen_text.size());
    io::model_files_write(out.path(), tensors);
    out.commit();
}

}  // namespace lota::model
