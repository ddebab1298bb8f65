// Random model initialisation in HF format (see init.h). Every tensor is drawn from its own seeded
// streams (Note [init streams]), so the same options always give the same bytes. Linear and
// embedding weights ~ N(0, 1/fan_in) keep activations O(1), which makes parity tests sharp;
// norm weights ~ 1 + N(0, 0.1²) and biases ~ N(0, 0.1²) so that they matter too. With bits > 0
// each projection is rounded to the stored dtype, RTN-quantized (quant/rtn.h) and written as GPTQ
// tensors before the next one is drawn.
#include "model/init.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <new>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "io/gptq_checkpoint.h"
#include "io/hf_config.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "kernels/device_memory.h"
#include "model/arch.h"
#include "model/device.h"
#include "model/transformer.h"
#include "quant/gptq_tensors.h"
#include "quant/rtn.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"
#include "util/progress.h"
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
    for (const auto& [k, v] : tok["model"]["vocab"].items())
        max_id = std::max(max_id, json_int(v, path + ": the id of vocabulary entry '" + k + "'", 0, INT32_MAX));
    if (tok.contains("added_tokens"))
        for (const auto& t : tok["added_tokens"])
            max_id = std::max(max_id, json_int_or(t, "id", -1, path + ": an added token's id", 0, INT32_MAX));
    return max_id + 1;
}

int64_t special_id(const nlohmann::json& tok, const nlohmann::json& tok_cfg, const char* key) {
    if (!tok_cfg.contains(key) || tok_cfg[key].is_null()) return -1;
    std::string s = tok_cfg[key].is_string() ? tok_cfg[key].get<std::string>() : tok_cfg[key].value("content", "");
    if (tok.contains("added_tokens"))
        for (const auto& t : tok["added_tokens"])
            if (t.value("content", "") == s) return json_int_or(t, "id", -1, "tokenizer.json: an added token's id");
    if (tok["model"]["vocab"].contains(s)) return json_int(tok["model"]["vocab"][s], "tokenizer.json: a vocabulary id");
    return -1;
}

// Refuses sizes that cannot fit this machine's memory before drawing anything: an allocation
// beyond it is either refused by the allocator or, with overcommit, killed later. What is held:
// the shard being filled, the largest float32 draw with RTN's temporaries (about 4 copies), and
// the drawn tensor in the stored dtype.
void memory_check(const io::ModelConfig& c, at::ScalarType store, uint64_t shard_bytes) {
    const double C = (double)c.hidden_size, q = (double)c.num_attention_heads * (double)c.head_dim;
    const double largest = std::max({(double)c.vocab_size * C, C * (double)c.intermediate_size, q * C});
    const double bytes = (double)shard_bytes + largest * (4.0 * 4 + (double)c10::elementSize(store));
    const double ram = (double)::sysconf(_SC_PHYS_PAGES) * (double)::sysconf(_SC_PAGE_SIZE);
    LOTA_CHECK(bytes <= ram,
               "init: the largest tensor (%.3g values) and a shard of %.1f GiB need %.1f GiB of memory, more than this "
               "machine's %.1f GiB",
               largest, (double)shard_bytes / (1 << 30), bytes / (1 << 30), ram / (1 << 30));
}

// Note [init streams]
// Tensor i of the model (in the order model_init draws them) is cut into chunks of INIT_CHUNK values;
// chunk j is filled by at::normal_ from its own mt19937 generator seeded with mix(mix(seed) + i, j)
// (splitmix64's finaliser). The chunks are independent, so they are drawn on every thread in any
// order and the bytes depend on the seed and the shapes only. One sequential generator would make a
// 70B model's 7e10 draws take tens of minutes. On a GPU (--device cuda) tensor i is drawn from one
// Philox stream seeded with mix(mix(seed) + i): other values than the CPU's, the same on every run
// on the same GPU model (PyTorch sizes its launch, hence the stream's use, by the GPU's SM count).
constexpr int64_t INIT_CHUNK = int64_t(1) << 20;

uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/// Float32 buffer of `n` values on `device`; the init error names the shape when memory is short.
at::Tensor float_buffer(int64_t n, const std::vector<int64_t>& shape, const at::Device& device) {
    try {
        return at::empty({n}, at::TensorOptions().dtype(at::kFloat).device(device));
    } catch (const std::bad_alloc&) {
        LOTA_FAIL("init: out of memory allocating a tensor of shape %s", shape_str(shape).c_str());
    } catch (const c10::Error& e) {
        LOTA_FAIL("init: cannot allocate a tensor of shape %s: %s", shape_str(shape).c_str(),
                  e.what_without_backtrace());
    }
}

/// Fills contiguous float32 `t` with N(mean, std²) from the streams of tensor `index` (Note [init streams]).
void normal_fill(at::Tensor& t, double mean, double std, uint64_t seed, uint64_t index) {
    const uint64_t base = mix(mix(seed) + index);
    if (!t.is_cpu()) {
        // A GPU draws a whole tensor in parallel from one Philox stream, seeded per tensor.
        at::Generator gen = at::globalContext().defaultGenerator(t.device());
        {
            std::lock_guard<std::mutex> lock(gen.mutex());  // not while drawing: normal_ takes it too
            gen.set_current_seed(base);
        }
        t.normal_(mean, std, gen);
        return;
    }
    at::Tensor flat = t.view({-1});
    const int64_t n = flat.numel(), chunks = (n + INIT_CHUNK - 1) / INIT_CHUNK;
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
            at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(mix(base + (uint64_t)j));
            flat.slice(0, j * INIT_CHUNK, std::min(n, (j + 1) * INIT_CHUNK)).normal_(mean, std, gen);
        }
    });
}

/// One tensor to draw: N(mean, std²) of `shape`; `linear` marks a block projection's weight.
struct Draw {
    std::string name;
    std::vector<int64_t> shape;
    double mean, std;
    bool linear = false;
    int64_t layer = -1;  ///< block index, -1 outside the blocks
};

/// Every tensor of the model in drawing order (the order of Note [init streams]).
std::vector<Draw> draws_of(const io::ModelConfig& c) {
    const int64_t C = c.hidden_size, D = c.head_dim;
    const double embed_std = 1.0 / std::sqrt((double)C);
    std::vector<Draw> d;
    d.push_back({name_embed(), {c.vocab_size, C}, 0.0, embed_std});
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        for (Slot s : PROJECTION_SLOTS) {
            const auto [out, in] = slot_shape(c, s);
            const std::string name = name_linear(l, s);
            d.push_back({name + ".weight", {out, in}, 0.0, 1.0 / std::sqrt((double)in), true, l});
            if (slot_has_bias(c, s)) d.push_back({name + ".bias", {out}, 0.0, 0.1, false, l});
        }
        d.push_back({name_input_norm(l), {C}, 1.0, 0.1, false, l});
        d.push_back({name_post_norm(l), {C}, 1.0, 0.1, false, l});
        if (c.qk_norm) {
            d.push_back({name_q_norm(l), {D}, 1.0, 0.1, false, l});
            d.push_back({name_k_norm(l), {D}, 1.0, 0.1, false, l});
        }
    }
    d.push_back({name_final_norm(), {C}, 1.0, 0.1});
    if (!c.tie_word_embeddings) d.push_back({name_lm_head(), {c.vocab_size, C}, 0.0, embed_std});
    return d;
}

}  // namespace

InitReport model_init(const InitOptions& o) {
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
    const bool quantized = o.bits != 0;
    quant::QuantOptions qopt;
    qopt.bits = o.bits;
    qopt.group_size = o.group_size;
    qopt.sym = o.sym;
    if (quantized)
        for (Slot s : PROJECTION_SLOTS) {
            const auto [out, in] = slot_shape(c, s);
            quant::quant_shape_check(qopt, in, out, ("init: " + name_linear(0, s)).c_str());
        }
    memory_check(c, store, o.shard_bytes);
    const at::Device device = device_from_name(device_resolve(o.device));

    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    InitReport rep;
    StagedDir out(o.out, o.overwrite);
    // First, so that the generation_config.json written below replaces one copied from the tokenizer.
    if (!o.tokenizer.empty()) io::model_text_files_copy(o.tokenizer, out.path());
    nlohmann::json gen_cfg = {{"do_sample", false}};
    if (c.bos_token_id >= 0) gen_cfg["bos_token_id"] = c.bos_token_id;
    if (!c.eos_token_ids.empty()) gen_cfg["eos_token_id"] = c.eos_token_ids[0];
    std::string gen_text = gen_cfg.dump(2);
    io::file_write_atomic(out.path() + "/generation_config.json", gen_text.data(), gen_text.size());

    io::ModelFilesWriter files(out.path(), o.shard_bytes);
    const std::vector<Draw> draws = draws_of(c);
    const int64_t L = c.num_hidden_layers;
    double layer_t0 = 0;
    at::Tensor scratch;  // float32 draws, reused: the largest tensor so far (fresh pages cost as much as the draw)
    for (size_t i = 0; i < draws.size(); ++i) {
        const Draw& d = draws[i];
        if (d.layer >= 0 && (i == 0 || draws[i - 1].layer != d.layer)) layer_t0 = seconds();
        int64_t n = 1;
        for (int64_t s : d.shape) n *= s;
        if (!scratch.defined() || scratch.numel() < n) {
            scratch = at::Tensor();
            scratch = float_buffer(n, d.shape, device);
        }
        at::Tensor w = scratch.narrow(0, 0, n).view(d.shape);
        normal_fill(w, d.mean, d.std, o.seed, i);
        rep.params += n;
        if (quantized && d.linear) {
            // The float values `lota quantize` reads back from the 16-bit model (rounded to the stored
            // dtype), hence the same codes; RTN overwrites the draw with them.
            if (store != at::kFloat) w.copy_(w.to(store));
            const quant::QuantizedWeight qw = quant::rtn_quantize_(w, qopt);
            for (const auto& [name, q] : io::gptq_linear_named_tensors(
                     d.name.substr(0, d.name.size() - std::string(".weight").size()),
                     quant::gptq_tensors_from_quantized_weight(qw)))
                files.add(name, q);
        } else {
            files.add(d.name, w.to(at::kCPU, store, false, /*copy=*/true));  // the writer keeps it: not scratch
        }
        const bool layer_done = d.layer >= 0 && (i + 1 == draws.size() || draws[i + 1].layer != d.layer);
        if (layer_done && L >= 8) {
            const double now = seconds();
            LOTA_LOG_INFO("init: layer %lld/%lld | %.1fs | elapsed %s | ETA %s", (long long)d.layer + 1, (long long)L,
                          now - layer_t0, format_duration(now).c_str(),
                          format_duration(now / double(d.layer + 1) * double(L - d.layer - 1)).c_str());
            layer_t0 = now;
        }
    }
    files.finish();
    rep.bytes = files.bytes_added();
    const nlohmann::json config = hf_config_to_json(c);
    if (quantized) {
        io::gptq_config_files_write(out.path(), config, quant::gptq_config_of(qopt, "rtn"));
    } else {
        const std::string cfg_text = config.dump(2);
        io::file_write_atomic(out.path() + "/config.json", cfg_text.data(), cfg_text.size());
    }
    out.commit();
    rep.seconds = seconds();
    rep.peak_memory_mib = kernels::device_peak_memory_mib(at::Device(at::kCPU));
    return rep;
}

}  // namespace lota::model
