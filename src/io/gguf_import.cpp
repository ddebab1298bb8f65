// GGUF -> HF model directory; see gguf_import.h. Reads hyper-parameters, converts every tensor
// (dequantize, undo the Q/K permutation, check the shape, cast), rebuilds the tokenizer files and
// writes it all into a staging directory that is renamed into place at the end.
#include "io/gguf_import.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/gguf_names.h"
#include "io/gguf_tokenizer.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/log.h"

namespace lota::io {
namespace {

namespace names = gguf_names;
using ojson = nlohmann::ordered_json;

struct LlamaHparams {
    int64_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ctx = 0, n_vocab = 0;
    double rms_eps = 0, rope_theta = 10000.0;
    std::string rope_scaling_type;  // "" or "linear"
    double rope_scaling_factor = 1.0;
    bool tied = true;
};

int64_t positive(const GgufFile& g, const std::string& key) {
    const uint64_t v = g.get_uint(key);
    LOTA_CHECK(v > 0 && v < (1ull << 40), "%s: %s is %llu, expected a positive size", g.path().c_str(), key.c_str(),
               (unsigned long long)v);
    return static_cast<int64_t>(v);
}

LlamaHparams read_hparams(const GgufFile& g, const std::string& arch) {
    auto key = [&](const char* k) { return names::key_for(k, arch); };
    const char* p = g.path().c_str();
    LlamaHparams h;
    h.n_layer = positive(g, key(names::BLOCK_COUNT));
    h.n_embd = positive(g, key(names::EMBEDDING_LENGTH));
    h.n_ff = positive(g, key(names::FEED_FORWARD_LENGTH));
    h.n_head = positive(g, key(names::HEAD_COUNT));
    h.n_head_kv = g.has(key(names::HEAD_COUNT_KV)) ? positive(g, key(names::HEAD_COUNT_KV)) : h.n_head;
    h.n_ctx = positive(g, key(names::CONTEXT_LENGTH));
    h.rms_eps = g.get_float(key(names::RMS_EPS));
    if (g.has(key(names::ROPE_FREQ_BASE))) h.rope_theta = g.get_float(key(names::ROPE_FREQ_BASE));
    LOTA_CHECK(h.n_head % h.n_head_kv == 0, "%s: %lld attention heads are not a multiple of %lld KV heads", p,
               (long long)h.n_head, (long long)h.n_head_kv);
    h.head_dim = g.has(key(names::KEY_LENGTH)) ? positive(g, key(names::KEY_LENGTH)) : h.n_embd / h.n_head;
    LOTA_CHECK(g.has(key(names::KEY_LENGTH)) || h.n_embd % h.n_head == 0,
               "%s: embedding length %lld is not a multiple of %lld heads", p, (long long)h.n_embd, (long long)h.n_head);
    LOTA_CHECK(h.head_dim % 2 == 0, "%s: head dimension %lld is odd, expected even (rope pairs)", p,
               (long long)h.head_dim);
    if (g.has(key(names::ROPE_DIMENSION_COUNT))) {
        const auto rot = static_cast<int64_t>(g.get_uint(key(names::ROPE_DIMENSION_COUNT)));
        LOTA_CHECK(rot == h.head_dim, "%s: %s is %lld but the head dimension is %lld; partial rotary is not supported",
                   p, key(names::ROPE_DIMENSION_COUNT).c_str(), (long long)rot, (long long)h.head_dim);
    }
    if (g.has(key(names::ROPE_SCALING_TYPE))) {
        const std::string& type = g.get_string(key(names::ROPE_SCALING_TYPE));
        LOTA_CHECK(type == "none" || type == "linear", "%s: rope scaling '%s' is not supported (supported: none, linear)",
                   p, type.c_str());
        if (type == "linear") {
            h.rope_scaling_type = type;
            h.rope_scaling_factor = g.get_float(key(names::ROPE_SCALING_FACTOR));
        }
    }
    LOTA_CHECK(g.find_tensor(names::ROPE_FREQS) == nullptr,
               "%s: has %s (Llama 3.1 rope scaling), which lota import cannot map to an HF rope_scaling yet", p,
               names::ROPE_FREQS);
    const GgufTensorInfo* embd = g.find_tensor(names::TOKEN_EMBD.gguf);
    LOTA_CHECK(embd != nullptr, "%s: tensor '%s' is missing", p, names::TOKEN_EMBD.gguf);
    LOTA_CHECK(embd->ne.size() == 2, "%s: tensor '%s' has %zu dimensions, expected 2", p, names::TOKEN_EMBD.gguf,
               embd->ne.size());
    h.n_vocab = g.has(key(names::VOCAB_SIZE)) ? positive(g, key(names::VOCAB_SIZE)) : embd->ne[1];
    h.tied = g.find_tensor(names::OUTPUT.gguf) == nullptr;
    return h;
}

int64_t dim_size(names::Dim d, const LlamaHparams& h) {
    switch (d) {
        case names::Dim::EMBD: return h.n_embd;
        case names::Dim::FF: return h.n_ff;
        case names::Dim::Q: return h.n_head * h.head_dim;
        case names::Dim::KV: return h.n_head_kv * h.head_dim;
        case names::Dim::VOCAB: return h.n_vocab;
        default: return 1;
    }
}

// Note [llama.cpp Q/K permutation]: llama.cpp's converter reorders the rows of q_proj and k_proj
// inside each head, because its rope rotates adjacent pairs (rows 2i, 2i+1) where HF's rotates
// halves (rows i, i + d/2). GGUF row h·d + 2i + a holds HF row h·d + a·d/2 + i (a ∈ {0, 1}). To undo
// it, view the rows as [heads, d/2, 2], swap the last two axes and flatten. This is a pure row
// permutation, so it is exact. transformers' GGUF loader does the same (reverse_permute_weights).
at::Tensor unpermute_heads(const at::Tensor& w, int64_t n_heads) {
    const int64_t rows = w.size(0), cols = w.size(1), d = rows / n_heads;
    return w.reshape({n_heads, d / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

at::ScalarType dtype_from_name(const std::string& dtype) {
    if (dtype == "bf16") return at::kBFloat16;
    if (dtype == "f16") return at::kHalf;
    if (dtype == "f32") return at::kFloat;
    LOTA_FAIL("unsupported --dtype '%s' (expected bf16, f16 or f32)", dtype.c_str());
}

const char* torch_dtype_name(at::ScalarType t) {
    return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : "float32";
}

class TensorConverter {
  public:
    TensorConverter(const GgufFile& g, const LlamaHparams& h, at::ScalarType dtype) : g_(g), h_(h), dtype_(dtype) {}

    void add(const std::string& gguf_name, const std::string& hf_name, const names::TensorName& row) {
        const char* p = g_.path().c_str();
        LOTA_CHECK(g_.find_tensor(gguf_name) != nullptr, "%s: tensor '%s' is missing (needed for %s)", p,
                   gguf_name.c_str(), hf_name.c_str());
        at::Tensor w = g_.load_f32(gguf_name);
        std::vector<int64_t> want{dim_size(row.rows, h_)};
        if (row.cols != names::Dim::ONE) want.push_back(dim_size(row.cols, h_));
        LOTA_CHECK(w.sizes().vec() == want, "%s: tensor '%s' has shape %s, expected %s for %s", p, gguf_name.c_str(),
                   shape_str(w.sizes().vec()).c_str(), shape_str(want).c_str(), hf_name.c_str());
        if (row.permute == names::Permute::Q_HEADS) w = unpermute_heads(w, h_.n_head);
        if (row.permute == names::Permute::K_HEADS) w = unpermute_heads(w, h_.n_head_kv);
        used_.insert(gguf_name);
        out_.emplace_back(hf_name, w.to(dtype_).contiguous());
    }

    void check_all_used() const {
        for (const auto& t : g_.tensors())
            LOTA_CHECK(used_.count(t.name) != 0, "%s: unexpected tensor '%s' for a llama model (not imported)",
                       g_.path().c_str(), t.name.c_str());
    }
    std::vector<std::pair<std::string, at::Tensor>>& tensors() { return out_; }

  private:
    const GgufFile& g_;
    const LlamaHparams& h_;
    at::ScalarType dtype_;
    std::set<std::string> used_;
    std::vector<std::pair<std::string, at::Tensor>> out_;
};

std::vector<std::pair<std::string, at::Tensor>> convert_tensors(const GgufFile& g, const LlamaHparams& h,
                                                                at::ScalarType dtype) {
    TensorConverter conv(g, h, dtype);
    conv.add(names::TOKEN_EMBD.gguf, names::TOKEN_EMBD.hf, names::TOKEN_EMBD);
    const int64_t log_every = std::max<int64_t>(1, h.n_layer / 5);
    for (int64_t l = 0; l < h.n_layer; ++l) {
        const std::string gp = names::GGUF_LAYER_PREFIX + std::to_string(l) + ".";
        const std::string hp = names::HF_LAYER_PREFIX + std::to_string(l) + ".";
        for (const auto& row : names::LLAMA_LAYER) conv.add(gp + row.gguf, hp + row.hf, row);
        if ((l + 1) % log_every == 0 || l + 1 == h.n_layer)
            LOTA_LOG_INFO("import: converted layer %lld/%lld", (long long)(l + 1), (long long)h.n_layer);
    }
    conv.add(names::OUTPUT_NORM.gguf, names::OUTPUT_NORM.hf, names::OUTPUT_NORM);
    if (!h.tied) conv.add(names::OUTPUT.gguf, names::OUTPUT.hf, names::OUTPUT);
    conv.check_all_used();
    return std::move(conv.tensors());
}

std::string config_json(const GgufFile& g, const LlamaHparams& h, const GgufSpecialTokens& sp, at::ScalarType dt) {
    ojson c;
    c["architectures"] = {names::HF_LLAMA_CLASS};
    c["model_type"] = names::HF_LLAMA_MODEL_TYPE;
    c["hidden_size"] = h.n_embd;
    c["intermediate_size"] = h.n_ff;
    c["num_hidden_layers"] = h.n_layer;
    c["num_attention_heads"] = h.n_head;
    c["num_key_value_heads"] = h.n_head_kv;
    c["head_dim"] = h.head_dim;
    c["hidden_act"] = "silu";
    c["max_position_embeddings"] = h.n_ctx;
    c["rms_norm_eps"] = h.rms_eps;
    c["rope_theta"] = h.rope_theta;
    c["rope_scaling"] = nullptr;
    if (!h.rope_scaling_type.empty())
        c["rope_scaling"] = {{"rope_type", h.rope_scaling_type}, {"factor", h.rope_scaling_factor}};
    c["vocab_size"] = h.n_vocab;
    c["tie_word_embeddings"] = h.tied;
    if (sp.bos) c["bos_token_id"] = *sp.bos;
    if (sp.eos) c["eos_token_id"] = *sp.eos;
    if (sp.pad) c["pad_token_id"] = *sp.pad;
    c["attention_bias"] = false;
    c["attention_dropout"] = 0.0;
    c["mlp_bias"] = false;
    c["initializer_range"] = 0.02;
    c["pretraining_tp"] = 1;
    c["use_cache"] = true;
    c["torch_dtype"] = torch_dtype_name(dt);
    return c.dump(2);
}

std::string generation_config_json(const GgufSpecialTokens& sp) {
    ojson c = ojson::object();
    if (sp.bos) c["bos_token_id"] = *sp.bos;
    if (sp.eos) c["eos_token_id"] = *sp.eos;
    if (sp.pad) c["pad_token_id"] = *sp.pad;
    return c.dump(2);
}

void write_text(const std::string& path, const std::string& text) { file_write_atomic(path, text.data(), text.size()); }

}  // namespace

void gguf_import(const GgufImportOptions& opts) {
    const at::ScalarType dtype = dtype_from_name(opts.dtype);
    GgufFile g(opts.gguf_path);
    const char* p = g.path().c_str();
    const std::string& arch = g.get_string(names::ARCHITECTURE);
    LOTA_CHECK(arch == names::ARCH_LLAMA, "%s: unsupported architecture %s (lota import supports: %s)", p, arch.c_str(),
               names::ARCH_LLAMA);
    const LlamaHparams h = read_hparams(g, arch);
    LOTA_LOG_INFO("import: %s: GGUF v%u, %s, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, %s embeddings", p,
                  g.version(), arch.c_str(), (long long)h.n_layer, (long long)h.n_embd, (long long)h.n_head,
                  (long long)h.n_head_kv, (long long)h.n_vocab, h.tied ? "tied" : "untied");

    // Tokenizer first: it is cheap and fails fast on unsupported files.
    const GgufTokenizerFiles tok = gguf_tokenizer_build(g, h.n_ctx);
    const auto n_tokens = static_cast<int64_t>(g.get_array(names::TOK_TOKENS, GgufValueType::STRING).size());
    LOTA_CHECK(n_tokens == h.n_vocab, "%s: %s has %lld tokens, expected %lld (the vocabulary size)", p,
               names::TOK_TOKENS, (long long)n_tokens, (long long)h.n_vocab);
    const GgufSpecialTokens special = gguf_special_tokens(g, h.n_vocab);

    StagedDir dir(opts.out_dir, opts.overwrite);
    auto tensors = convert_tensors(g, h, dtype);
    LOTA_LOG_INFO("import: writing %zu tensors (%s) to %s", tensors.size(), opts.dtype.c_str(), opts.out_dir.c_str());
    safetensors_write(dir.path() + "/model.safetensors", tensors, {{"format", "pt"}});
    tensors.clear();
    write_text(dir.path() + "/config.json", config_json(g, h, special, dtype));
    write_text(dir.path() + "/generation_config.json", generation_config_json(special));
    write_text(dir.path() + "/tokenizer.json", tok.tokenizer_json);
    write_text(dir.path() + "/tokenizer_config.json", tok.tokenizer_config_json);
    dir.commit();
    LOTA_LOG_INFO("import: wrote %s", opts.out_dir.c_str());
}

void gguf_dump_tensors(const std::string& gguf_path, const std::string& out_path) {
    GgufFile g(gguf_path);
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& t : g.tensors()) out.emplace_back(t.name, g.load_f32(t.name));
    LOTA_LOG_INFO("import: writing %zu dequantized tensors to %s", out.size(), out_path.c_str());
    safetensors_write(out_path, out, {{"format", "pt"}});
}

}  // namespace lota::io
