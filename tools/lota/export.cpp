// lota export --format gguf (--format hf: export_hf.h): an HF model directory (16-bit, GPTQ or LoTA-merged; llama, mistral,
// qwen2, qwen3) -> one GGUF file for llama.cpp, with the metadata keys and tensor names llama.cpp's
// convert_hf_to_gguf writes for that architecture.
//
// Quantized linears with contiguous groups (no act-order), a group size that is a multiple of 32
// and codes of 2, 3 or 4 bits become Q4_1 blocks directly: each block of 32 codes keeps its codes
// and gets d = S and m = S·(F − Z) in fp16 (y = d·q + m = S·(q − Z + F)); the only rounding is m's,
// reported in grid steps. Anything else quantized (8 bits, act-order, other group sizes) is refused
// unless --allow-lossy, which writes it as F16 and reports the error. Embeddings and the head are
// written in the dtype they are stored in (F32, F16 or BF16); norms, biases and other 1-D tensors as
// F32, as llama.cpp's converter writes them (its CPU kernels multiply F32 activations by F32 or F16
// norms only; a BF16 norm aborts there).
// Llama and Mistral q/k rows are permuted the way llama.cpp's rope expects (the inverse of
// `lota import`'s Note [llama.cpp Q/K permutation]); Qwen2/Qwen3 use llama.cpp's NeoX rope and are
// not permuted. Llama 3.1 rope scaling becomes a rope_freqs tensor. Tokenizers: byte-level BPE as
// llama.cpp's "gpt2" model, Llama 2 / Mistral style BPE with byte fallback as its "llama" model.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "export_hf.h"
#include "io/gguf_names.h"
#include "io/gguf_writer.h"
#include "io/gptq_checkpoint.h"
#include "io/hf_config.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "quant/gptq_tensors.h"
#include "quant/quantized_weight.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/log.h"
#include "util/strfmt.h"

namespace {

namespace fs = std::filesystem;
using lota::io::Arch;
using lota::io::GgmlType;

struct ExportOptions {
    std::string model, out, format = "gguf", dtype = "bf16";
    bool allow_lossy = false, overwrite = false, json = false;
};

struct ExportReport {
    int64_t q4_1 = 0, lossy_f16 = 0, dense = 0;
    double max_m_error_steps = 0;  // largest |fp16(m) − S·(F − Z)| / S over every Q4_1 block
    double max_lossy_error = 0;    // largest |fp16(W) − W| over tensors written lossy
};

// llama.cpp's architecture name for ours: its converter writes Mistral as "llama".
const char* gguf_arch(Arch a) {
    switch (a) {
        case Arch::LLAMA:
        case Arch::MISTRAL: return "llama";
        case Arch::QWEN2: return "qwen2";
        case Arch::QWEN3: return "qwen3";
    }
    return "llama";
}

// Rows of q_proj/k_proj (or their per-row data) in the order llama.cpp's rope expects: view the rows
// of each head as [2, d/2], swap to [d/2, 2] (GGUF row h·d + 2i + a = HF row h·d + a·d/2 + i).
at::Tensor permute_heads(const at::Tensor& w, int64_t n_heads) {
    const int64_t rows = w.size(0), d = rows / n_heads;
    std::vector<int64_t> shape{n_heads, 2, d / 2};
    for (int64_t i = 1; i < w.dim(); ++i) shape.push_back(w.size(i));
    std::vector<int64_t> flat{rows};
    for (int64_t i = 1; i < w.dim(); ++i) flat.push_back(w.size(i));
    return w.reshape(shape).transpose(1, 2).reshape(flat).contiguous();
}

GgmlType ggml_type_of(at::ScalarType t, const std::string& name) {
    if (t == at::kFloat) return GgmlType::F32;
    if (t == at::kHalf) return GgmlType::F16;
    if (t == at::kBFloat16) return GgmlType::BF16;
    LOTA_FAIL("tensor '%s' has dtype %s; GGUF export writes float32, float16 or bfloat16 tensors", name.c_str(),
              c10::toString(t));
}

class Exporter {
  public:
    Exporter(const ExportOptions& o) : o_(o), files_(o.model) {
        cfg_ = lota::io::hf_config_read(o.model + "/config.json");
        gptq_ = lota::io::gptq_config_read(o.model);
        LOTA_CHECK(cfg_.rope_scaling.type.empty() || cfg_.rope_scaling.type == "llama3",
                   "%s/config.json: rope scaling '%s' is not exported to GGUF (llama3 is)", o.model.c_str(),
                   cfg_.rope_scaling.type.c_str());
    }

    ExportReport run() {
        const std::string arch = gguf_arch(cfg_.arch);
        write_metadata(arch);
        if (cfg_.rope_scaling.type == "llama3") rope_freqs();
        dense("model.embed_tokens.weight", "token_embd.weight");
        for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
            const std::string hp = "model.layers." + std::to_string(l) + ".", gp = "blk." + std::to_string(l) + ".";
            dense(hp + "input_layernorm.weight", gp + "attn_norm.weight");
            linear(hp + "self_attn.q_proj", gp + "attn_q", cfg_.num_attention_heads);
            linear(hp + "self_attn.k_proj", gp + "attn_k", cfg_.num_key_value_heads);
            linear(hp + "self_attn.v_proj", gp + "attn_v", 0);
            linear(hp + "self_attn.o_proj", gp + "attn_output", 0);
            if (cfg_.qk_norm) {
                dense(hp + "self_attn.q_norm.weight", gp + "attn_q_norm.weight");
                dense(hp + "self_attn.k_norm.weight", gp + "attn_k_norm.weight");
            }
            dense(hp + "post_attention_layernorm.weight", gp + "ffn_norm.weight");
            linear(hp + "mlp.gate_proj", gp + "ffn_gate", 0);
            linear(hp + "mlp.up_proj", gp + "ffn_up", 0);
            linear(hp + "mlp.down_proj", gp + "ffn_down", 0);
        }
        dense("model.norm.weight", "output_norm.weight");
        if (!cfg_.tie_word_embeddings) dense("lm_head.weight", "output.weight");
        w_.set_u32("general.file_type", rep_.q4_1 > 0 ? 3u /* MOSTLY_Q4_1 */ : file_type_dense_);
        w_.set_string("general.size_label", size_label(n_params_));
        w_.write(o_.out);
        return rep_;
    }

  private:
    // gguf-py's model_weight_count_rounded_notation: the parameter count in K/M/B/T with at least two
    // significant digits ("135M", "1.7B").
    static std::string size_label(int64_t n) {
        const double v = static_cast<double>(n);
        double x = v * 1e-3;
        const char* suffix = "K";
        if (v > 1e12) x = v * 1e-12, suffix = "T";
        else if (v > 1e9) x = v * 1e-9, suffix = "B";
        else if (v > 1e6) x = v * 1e-6, suffix = "M";
        std::string digits = std::to_string(static_cast<long long>(std::nearbyint(x)));  // Python's round: half to even
        digits.erase(0, digits.find_first_not_of('0') == std::string::npos ? digits.size() : digits.find_first_not_of('0'));
        const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
        return lota::strfmt("%.*f%s", fix, x, suffix);
    }

    // Llama 3.1 rope scaling as llama.cpp applies it: a rope_freqs tensor of head_dim/2 factors that
    // divide the rope frequencies (no rope.scaling.* keys). With θ_i = rope_theta^(−2i/head_dim), the
    // wavelength λ_i = 2π/θ_i and L = original_max_position_embeddings: factor 1 when λ_i < L/high_freq_factor,
    // `factor` when λ_i > L/low_freq_factor, else 1/((1 − s)/factor + s) with
    // s = (L/λ_i − low_freq_factor)/(high_freq_factor − low_freq_factor).
    void rope_freqs() {
        const lota::io::RopeScaling& r = cfg_.rope_scaling;
        const double L = static_cast<double>(r.original_max_position_embeddings);
        LOTA_CHECK(r.high_freq_factor != r.low_freq_factor && r.factor > 0,
                   "%s/config.json: llama3 rope scaling needs factor > 0 and high_freq_factor != low_freq_factor",
                   o_.model.c_str());
        const int64_t half = cfg_.head_dim / 2;
        std::vector<float> f(static_cast<size_t>(half));
        for (int64_t i = 0; i < half; ++i) {
            const double theta = std::pow(cfg_.rope_theta, -2.0 * static_cast<double>(i) / cfg_.head_dim);
            const double wavelen = 2 * M_PI / theta;
            double x;
            if (wavelen < L / r.high_freq_factor) x = 1.0;
            else if (wavelen > L / r.low_freq_factor) x = r.factor;
            else {
                const double s = (L / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
                x = 1.0 / ((1.0 - s) / r.factor + s);
            }
            f[i] = static_cast<float>(x);
        }
        std::vector<uint8_t> bytes(f.size() * sizeof(float));
        std::memcpy(bytes.data(), f.data(), bytes.size());
        w_.add_tensor(lota::io::gguf_names::ROPE_FREQS, GgmlType::F32, {half}, std::move(bytes));
        n_params_ += half;
        ++rep_.dense;
    }

    bool permuted() const { return cfg_.arch == Arch::LLAMA || cfg_.arch == Arch::MISTRAL; }

    void write_metadata(const std::string& arch) {
        auto key = [&](const char* k) { return arch + "." + k; };
        w_.set_string("general.architecture", arch);
        w_.set_string("general.type", "model");
        w_.set_string("general.name", fs::path(o_.model).filename().string());
        w_.set_u32("general.quantization_version", 2);
        w_.set_u32(key("block_count"), static_cast<uint32_t>(cfg_.num_hidden_layers));
        w_.set_u32(key("context_length"), static_cast<uint32_t>(cfg_.max_position_embeddings));
        w_.set_u32(key("embedding_length"), static_cast<uint32_t>(cfg_.hidden_size));
        w_.set_u32(key("feed_forward_length"), static_cast<uint32_t>(cfg_.intermediate_size));
        w_.set_u32(key("attention.head_count"), static_cast<uint32_t>(cfg_.num_attention_heads));
        w_.set_u32(key("attention.head_count_kv"), static_cast<uint32_t>(cfg_.num_key_value_heads));
        w_.set_f32(key("rope.freq_base"), static_cast<float>(cfg_.rope_theta));
        w_.set_f32(key("attention.layer_norm_rms_epsilon"), static_cast<float>(cfg_.rms_norm_eps));
        w_.set_u32(key("attention.key_length"), static_cast<uint32_t>(cfg_.head_dim));
        w_.set_u32(key("attention.value_length"), static_cast<uint32_t>(cfg_.head_dim));
        if (cfg_.arch == Arch::LLAMA || cfg_.arch == Arch::MISTRAL) {
            w_.set_u32(key("vocab_size"), static_cast<uint32_t>(cfg_.vocab_size));
            w_.set_u32(key("rope.dimension_count"), static_cast<uint32_t>(cfg_.head_dim));
        }
        write_tokenizer();
    }

    // tokenizer.ggml.* from tokenizer.json: byte-level BPE is llama.cpp's "gpt2" model; for llama and
    // mistral, a BPE with byte fallback and a Sequence decoder (Llama 2, Mistral: ▁ for spaces, <0xXX>
    // byte tokens) is its "llama" model, as the converter decides (gguf-py LlamaHfVocab).
    void write_tokenizer() {
        const std::string path = o_.model + "/tokenizer.json";
        LOTA_CHECK(fs::exists(path), "%s: missing; the GGUF file needs the tokenizer", path.c_str());
        const nlohmann::json tj = nlohmann::json::parse(lota::io::file_read_text(path));
        const auto& model = tj.at("model");
        const nlohmann::json tc = tokenizer_config();
        if (permuted() && tc.contains("add_prefix_space") && tc["add_prefix_space"].is_boolean())
            w_.set_bool(lota::io::gguf_names::TOK_ADD_SPACE_PREFIX, tc["add_prefix_space"].get<bool>());
        const nlohmann::json decoder = tj.value("decoder", nlohmann::json());
        if (permuted() && model.value("type", "") == "BPE" && model.value("byte_fallback", false) &&
            decoder.is_object() && decoder.value("type", "") == "Sequence") {
            write_tokenizer_llama(tj, tc, path);
            return;
        }
        LOTA_CHECK(model.value("type", "") == "BPE" && tj.dump().find("\"ByteLevel\"") != std::string::npos,
                   "%s: only byte-level BPE tokenizers are exported to GGUF (tokenizer.ggml.model \"gpt2\")",
                   path.c_str());
        const lota::text::Tokenizer tok = lota::text::Tokenizer::from_dir(o_.model);
        const int64_t n = std::max<int64_t>(tok.vocab_size(), cfg_.vocab_size);
        std::vector<std::string> tokens(static_cast<size_t>(n));
        std::vector<int32_t> types(static_cast<size_t>(n), 1);  // 1 normal
        for (int64_t i = 0; i < n; ++i) {
            const std::string t = i < tok.vocab_size() ? tok.id_to_token(static_cast<int32_t>(i)) : "";
            if (t.empty()) {  // ids the tokenizer does not define (vocab padded to a multiple)
                tokens[i] = "[PAD" + std::to_string(i) + "]";
                types[i] = lota::io::gguf_names::TOKEN_TYPE_UNUSED;  // as llama.cpp's converter marks them
            } else {
                tokens[i] = t;
            }
        }
        if (tj.contains("added_tokens"))
            for (const auto& a : tj["added_tokens"]) {
                const int64_t id = a.at("id").get<int64_t>();
                if (id >= 0 && id < n) types[id] = a.value("special", false) || looks_special(a.value("content", ""))
                                                       ? 3 : 4;  // control / user-defined
            }
        std::vector<std::string> merges;
        for (const auto& m : model.at("merges"))
            merges.push_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>()
                                          : m.get<std::string>());
        w_.set_string("tokenizer.ggml.model", "gpt2");
        w_.set_string("tokenizer.ggml.pre", pre_name(tj, path));
        w_.set_strings("tokenizer.ggml.tokens", tokens);
        w_.set_i32s("tokenizer.ggml.token_type", types);
        w_.set_strings("tokenizer.ggml.merges", merges);
        const int32_t bos = tok.bos_id() >= 0 ? tok.bos_id() : static_cast<int32_t>(cfg_.bos_token_id);
        const int32_t eos = tok.eos_id() >= 0      ? tok.eos_id()
                            : cfg_.eos_token_ids.empty() ? -1
                                                         : static_cast<int32_t>(cfg_.eos_token_ids[0]);
        if (bos >= 0) w_.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
        if (eos >= 0) w_.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
        if (tc.contains("pad_token") && tc["pad_token"].is_string())
            if (auto id = tok.token_to_id(tc["pad_token"].get<std::string>()))
                w_.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*id));
        const AddSpecial add = add_special(tj, tc);
        if (add.bos) w_.set_bool("tokenizer.ggml.add_bos_token", *add.bos);
        if (add.eos) w_.set_bool("tokenizer.ggml.add_eos_token", *add.eos);
        if (add.sep) w_.set_bool("tokenizer.ggml.add_sep_token", *add.sep);
        if (!tok.chat_template().empty()) w_.set_string("tokenizer.chat_template", tok.chat_template());
    }

    // The "llama" tokenizer model from a tokenizer.json BPE with byte fallback, with the keys llama.cpp's
    // converter writes for it: the model's tokens in id order, then the added tokens past them; type BYTE
    // for <0xXX>, CONTROL for the named special tokens of tokenizer_config.json, USER_DEFINED for other
    // added tokens past the model's vocabulary, else NORMAL; no merges; pre-tokenizer "default".
    // Scores: llama.cpp's "llama" tokenizer repeatedly joins the adjacent pair whose joined token scores
    // highest, so a token's score is −(rank of the first merge that makes it), and −(number of merges) for
    // tokens no merge makes; that join order is the BPE's. (The converter, reading tokenizer.json without
    // tokenizer.model, writes −1000 for every token; llama.cpp then joins in another order than the
    // merges: " fox jumps" becomes "▁fo" "x" "▁jump" "s" where the BPE gives "▁f" "ox" "▁j" "umps".)
    void write_tokenizer_llama(const nlohmann::json& tj, const nlohmann::json& tc, const std::string& path) {
        namespace names = lota::io::gguf_names;
        const nlohmann::json& vocab = tj.at("model").at("vocab");
        const int64_t n_base = static_cast<int64_t>(vocab.size());
        std::vector<std::string> tokens(static_cast<size_t>(n_base));
        for (const auto& [text, id_json] : vocab.items()) {
            const int64_t id = id_json.get<int64_t>();
            LOTA_CHECK(id >= 0 && id < n_base && tokens[id].empty(),
                       "%s: model.vocab id %lld of '%s' is not one of 0..%lld once", path.c_str(), (long long)id,
                       text.c_str(), (long long)n_base - 1);
            tokens[id] = text;
        }
        std::vector<std::pair<int64_t, std::string>> added;  // added tokens, by id
        const nlohmann::json added_json = tj.value("added_tokens", nlohmann::json::array());
        for (const auto& a : added_json) {
            const int64_t id = a.at("id").get<int64_t>();
            const std::string text = a.at("content").get<std::string>();
            LOTA_CHECK(id >= 0, "%s: added token '%s' has id %lld", path.c_str(), text.c_str(), (long long)id);
            if (id < n_base) tokens[id] = text;
            else added.emplace_back(id, text);
        }
        std::sort(added.begin(), added.end());
        for (size_t i = 0; i < added.size(); ++i)
            LOTA_CHECK(added[i].first == n_base + static_cast<int64_t>(i),
                       "%s: added token '%s' has id %lld; added tokens past the model's %lld must follow it without "
                       "gaps", path.c_str(), added[i].second.c_str(), (long long)added[i].first, (long long)n_base);
        std::set<std::string> special;  // transformers' all_special_tokens: named ones and extra ones
        for (const char* typ : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"})
            if (auto t = config_token(tc, std::string(typ) + "_token")) special.insert(*t);
        for (const char* key : {"additional_special_tokens", "extra_special_tokens"})
            if (tc.contains(key) && tc[key].is_array())
                for (const auto& e : tc[key])
                    if (auto t = config_token_entry(e)) special.insert(*t);
        std::vector<int32_t> types;
        for (const std::string& t : tokens) {
            const bool byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
                              std::isxdigit(static_cast<unsigned char>(t[3])) &&
                              std::isxdigit(static_cast<unsigned char>(t[4]));
            types.push_back(byte ? names::TOKEN_TYPE_BYTE
                                 : special.count(t) ? names::TOKEN_TYPE_CONTROL : names::TOKEN_TYPE_NORMAL);
        }
        for (const auto& [id, text] : added) {
            tokens.push_back(text);
            types.push_back(special.count(text) ? names::TOKEN_TYPE_CONTROL : names::TOKEN_TYPE_USER_DEFINED);
        }
        w_.set_string(names::TOK_MODEL, names::TOK_MODEL_LLAMA);
        w_.set_string(names::TOK_PRE, "default");
        w_.set_strings(names::TOK_TOKENS, tokens);
        w_.set_f32s(names::TOK_SCORES, merge_scores(tj.at("model"), tokens, path));
        w_.set_i32s(names::TOK_TOKEN_TYPE, types);
        // Special ids as gguf-py's SpecialVocab finds them: the tokenizer_config.json token among
        // tokenizer.json's added tokens, else config.json's <typ>_token_id; ids past the vocabulary are dropped.
        const nlohmann::json cj = nlohmann::json::parse(lota::io::file_read_text(o_.model + "/config.json"));
        const std::pair<const char*, const char*> id_keys[] = {{"bos", names::TOK_BOS_ID}, {"eos", names::TOK_EOS_ID},
                                                               {"unk", names::TOK_UNK_ID}, {"sep", names::TOK_SEP_ID},
                                                               {"pad", names::TOK_PAD_ID}, {"mask", names::TOK_MASK_ID}};
        for (const auto& [typ, key] : id_keys) {
            std::optional<int64_t> id;
            if (auto t = config_token(tc, std::string(typ) + "_token"))
                for (const auto& a : added_json)
                    if (a.value("content", "") == *t) {
                        id = a.at("id").get<int64_t>();
                        break;
                    }
            const std::string cfg_key = std::string(typ) + "_token_id";
            if (!id && cj.contains(cfg_key) && cj[cfg_key].is_number_integer()) id = cj[cfg_key].get<int64_t>();
            if (id && *id >= 0 && *id < static_cast<int64_t>(tokens.size()))
                w_.set_u32(key, static_cast<uint32_t>(*id));
        }
        const AddSpecial add = add_special(tj, tc);
        if (add.bos) w_.set_bool(names::TOK_ADD_BOS, *add.bos);
        if (add.eos) w_.set_bool(names::TOK_ADD_EOS, *add.eos);
        if (add.sep) w_.set_bool(names::TOK_ADD_SEP, *add.sep);
        const lota::text::Tokenizer tok = lota::text::Tokenizer::from_dir(o_.model);
        if (!tok.chat_template().empty()) w_.set_string(names::TOK_CHAT_TEMPLATE, tok.chat_template());
    }

    // −(rank of the first merge whose joined text is the token), −(number of merges) for the rest.
    static std::vector<float> merge_scores(const nlohmann::json& model, const std::vector<std::string>& tokens,
                                           const std::string& path) {
        const nlohmann::json& merges = model.at("merges");
        const float none = -static_cast<float>(merges.size());
        std::vector<float> scores(tokens.size(), none);
        const nlohmann::json& vocab = model.at("vocab");
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            const nlohmann::json& m = merges[rank];
            std::string joined;
            if (m.is_array() && m.size() == 2) {
                joined = m[0].get<std::string>() + m[1].get<std::string>();
            } else {
                const std::string pair = m.get<std::string>();
                const size_t sp = pair.find(' ');
                LOTA_CHECK(sp != std::string::npos, "%s: merge %zu '%s' is not two tokens", path.c_str(), rank,
                           pair.c_str());
                joined = pair.substr(0, sp) + pair.substr(sp + 1);
            }
            const auto it = vocab.find(joined);
            LOTA_CHECK(it != vocab.end(), "%s: merge %zu makes '%s', which is not in model.vocab", path.c_str(), rank,
                       joined.c_str());
            float& s = scores[static_cast<size_t>(it->get<int64_t>())];
            if (s == none) s = -static_cast<float>(rank);
        }
        return scores;
    }

    // tokenizer_config.json's "<typ>_token": a string or an object with "content".
    static std::optional<std::string> config_token_entry(const nlohmann::json& e) {
        if (e.is_string()) return e.get<std::string>();
        if (e.is_object() && e.contains("content") && e["content"].is_string()) return e["content"].get<std::string>();
        return std::nullopt;
    }
    static std::optional<std::string> config_token(const nlohmann::json& tc, const std::string& key) {
        return tc.contains(key) ? config_token_entry(tc[key]) : std::nullopt;
    }

    // Added tokens that llama.cpp's converter makes control tokens although tokenizer.json does not mark
    // them special (its does_token_look_special).
    static bool looks_special(const std::string& t) {
        auto wrapped = [&](const std::string& open, const std::string& close) {
            return t.size() >= open.size() + close.size() && t.compare(0, open.size(), open) == 0 &&
                   t.compare(t.size() - close.size(), close.size(), close) == 0;
        };
        return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
               wrapped("<\uff5c", "\uff5c>") || wrapped("<unused", ">");
    }

    struct AddSpecial {
        std::optional<bool> bos, eos, sep;
    };

    // Whether encoding adds BOS / EOS / a separator, as llama.cpp's converter (gguf-py SpecialVocab)
    // decides it: from tokenizer.json's post-processor (ByteLevel: neither; TemplateProcessing: the special
    // tokens around $A in "single", the one between $A and $B in "pair"), else tokenizer_config's
    // add_bos_token / add_eos_token.
    static AddSpecial add_special(const nlohmann::json& tj, const nlohmann::json& tc) {
        auto token_of = [&](const char* key) -> std::string {
            if (!tc.contains(key)) return "";
            const nlohmann::json& e = tc[key];
            if (e.is_string()) return e.get<std::string>();
            if (e.is_object() && e.contains("content") && e["content"].is_string()) return e["content"].get<std::string>();
            return "";
        };
        auto special_id = [](const nlohmann::json& entry) -> std::string {
            if (!entry.is_object() || !entry.contains("SpecialToken")) return "";
            return entry["SpecialToken"].value("id", "");
        };
        std::string bos = token_of("bos_token"), eos = token_of("eos_token"), sep = token_of("sep_token");
        const std::string cls = token_of("cls_token");
        if (bos.empty()) bos = cls;
        if (eos.empty()) eos = sep;
        AddSpecial a;
        const nlohmann::json post = tj.value("post_processor", nlohmann::json());
        std::vector<nlohmann::json> procs;
        if (post.is_object() && post.contains("processors") && post["processors"].is_array())
            procs.assign(post["processors"].begin(), post["processors"].end());
        else if (post.is_object())
            procs.push_back(post);
        for (const nlohmann::json& p : procs) {
            const std::string type = p.value("type", "");
            if (type == "ByteLevel") {
                if (!a.bos) a.bos = false;
                if (!a.eos) a.eos = false;
            } else if (type == "RobertaProcessing") {
                a.bos = a.eos = a.sep = true;
            } else if (type == "TemplateProcessing") {
                const nlohmann::json single = p.value("single", nlohmann::json::array());
                std::string first, last;
                if (single.size() > 1) {
                    first = special_id(single.front());
                    last = special_id(single.back());
                    if (!first.empty()) a.bos = first == bos || first == cls;
                    if (!last.empty()) a.eos = last == eos;
                }
                std::vector<nlohmann::json> pair;
                const nlohmann::json pj = p.value("pair", nlohmann::json::array());
                pair.assign(pj.begin(), pj.end());
                if (!first.empty() && !pair.empty() && special_id(pair.front()) == first) pair.erase(pair.begin());
                if (!last.empty() && !pair.empty() && special_id(pair.back()) == last) pair.pop_back();
                auto seq = [](const nlohmann::json& e) {
                    return e.is_object() && e.contains("Sequence") ? e["Sequence"].value("id", "") : std::string();
                };
                if (pair.size() > 2 && seq(pair.front()) == "A" && seq(pair.back()) == "B") {
                    const std::string m0 = special_id(pair[1]);
                    bool add_sep = (m0 == sep || m0 == eos) && !m0.empty() && last.empty();
                    if (pair.size() == 4) {
                        const std::string m1 = special_id(pair[2]);
                        add_sep = add_sep || ((m1 == sep || m1 == eos) && !m1.empty());
                    }
                    a.sep = add_sep;
                }
            }
        }
        if (!a.bos && tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) a.bos = tc["add_bos_token"].get<bool>();
        if (!a.eos && tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) a.eos = tc["add_eos_token"].get<bool>();
        return a;
    }

    nlohmann::json tokenizer_config() const {
        const std::string p = o_.model + "/tokenizer_config.json";
        return fs::exists(p) ? nlohmann::json::parse(lota::io::file_read_text(p)) : nlohmann::json::object();
    }

    // tokenizer.ggml.pre: llama.cpp names each pre-tokenizer it implements; the name is the one its
    // converter writes for this tokenizer.json's pre-tokenizer (gguf_names::PRE_EXPORT). Anything else is
    // refused: llama.cpp refuses to load a file whose name it does not know.
    static std::string pre_name(const nlohmann::json& tj, const std::string& path) {
        namespace names = lota::io::gguf_names;
        const nlohmann::json pre = tj.value("pre_tokenizer", nlohmann::json());
        std::vector<nlohmann::json> parts;
        if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers"))
            parts.assign(pre["pretokenizers"].begin(), pre["pretokenizers"].end());
        else if (pre.is_object())
            parts.push_back(pre);
        auto type_is = [&](size_t i, const char* t) { return parts[i].is_object() && parts[i].value("type", "") == t; };
        auto byte_level_regex = [&](size_t i) { return type_is(i, "ByteLevel") && parts[i].value("use_regex", true); };
        if (parts.size() == 1 && byte_level_regex(0)) return names::PRE_GPT2;
        if (parts.size() == 2 && type_is(0, "Digits") && parts[0].value("individual_digits", false) &&
            byte_level_regex(1))
            return names::PRE_SMOLLM;
        if (parts.size() == 2 && type_is(0, "Split") && type_is(1, "ByteLevel") && !byte_level_regex(1) &&
            parts[0].contains("pattern") && parts[0]["pattern"].contains("Regex")) {
            const std::string regex = parts[0]["pattern"]["Regex"].get<std::string>();
            for (const auto& row : names::PRE_EXPORT)
                if (regex == row.regex) return row.pre;
        }
        LOTA_FAIL("%s: pre-tokenizer %s is not one llama.cpp implements under a name lota knows (GPT-2 and SmolLM "
                  "byte-level, and the Llama 3, Qwen2, Qwen3.5, Tekken and GPT-4o split regexes)",
                  path.c_str(), pre.dump().substr(0, 200).c_str());
    }

    // 1-D tensors (norms, biases) widened to F32, exactly; see the file comment.
    static at::Tensor vector_f32(at::Tensor t) { return t.dim() <= 1 ? t.to(at::kFloat).contiguous() : t; }

    void dense(const std::string& hf, const std::string& gguf) {
        const at::Tensor t = vector_f32(files_.load(hf).contiguous());
        const GgmlType type = ggml_type_of(t.scalar_type(), hf);
        if (hf == "model.embed_tokens.weight")
            file_type_dense_ = type == GgmlType::F32 ? 0u : type == GgmlType::F16 ? 1u : 32u;
        w_.add_tensor(gguf, type, t.sizes().vec(), lota::io::tensor_bytes(t));
        n_params_ += t.numel();
        ++rep_.dense;
    }

    // One projection: prefix "model.layers.N.self_attn.q_proj", GGUF base "blk.N.attn_q"; heads > 0
    // permutes its rows for llama.cpp's rope (llama, mistral).
    void linear(const std::string& prefix, const std::string& gguf, int64_t heads) {
        const bool permute = heads > 0 && permuted();
        if (files_.has(prefix + ".bias")) {
            at::Tensor b = vector_f32(files_.load(prefix + ".bias").contiguous());
            if (permute) b = permute_heads(b, heads);
            w_.add_tensor(gguf + ".bias", ggml_type_of(b.scalar_type(), prefix + ".bias"), b.sizes().vec(),
                          lota::io::tensor_bytes(b));
            n_params_ += b.numel();
        }
        if (!gptq_ || !files_.has(prefix + ".qweight")) {
            at::Tensor w = files_.load(prefix + ".weight").contiguous();
            if (permute) w = permute_heads(w, heads);
            w_.add_tensor(gguf + ".weight", ggml_type_of(w.scalar_type(), prefix + ".weight"), w.sizes().vec(),
                          lota::io::tensor_bytes(w));
            n_params_ += w.numel();
            ++rep_.dense;
            return;
        }
        const lota::io::GptqLinearTensors t = lota::io::gptq_linear_read(files_, prefix, *gptq_);
        const lota::quant::QuantizedWeight qw = lota::quant::quantized_weight_from_gptq(t, *gptq_, prefix);
        const int64_t K = qw.in_features, g = qw.group_size == -1 ? K : qw.group_size;
        const bool contiguous = at::equal(qw.g_idx.to(at::kLong), at::arange(K, at::kLong).div(g, "floor"));
        std::string why;
        if (qw.bits > 4) why = lota::strfmt("%d-bit codes do not fit Q4_1's 4-bit blocks", qw.bits);
        else if (!contiguous) why = "its groups are not contiguous (act-order)";
        else if (g % 32 != 0) why = lota::strfmt("group size %lld is not a multiple of 32", (long long)g);
        if (!why.empty()) {
            LOTA_CHECK(o_.allow_lossy, "%s: %s cannot be written losslessly: %s; --allow-lossy writes it as F16",
                       o_.model.c_str(), prefix.c_str(), why.c_str());
            const at::Tensor w = lota::quant::dequantize(qw).t().contiguous();  // [N, K] float32
            at::Tensor h = w.to(at::kHalf);
            rep_.max_lossy_error = std::max(rep_.max_lossy_error, (h.to(at::kFloat) - w).abs().max().item<double>());
            if (permute) h = permute_heads(h, heads);
            w_.add_tensor(gguf + ".weight", GgmlType::F16, h.sizes().vec(), lota::io::tensor_bytes(h));
            n_params_ += h.numel();
            ++rep_.lossy_f16;
            return;
        }
        // Per block of 32 inputs: d = S, m = S·(F − Z) of its group, for output row n.
        const int64_t B = K / 32;
        const at::Tensor block_group = at::arange(B, at::kLong).mul(32).div(g, "floor");
        const at::Tensor S = qw.scales.to(at::kFloat).index_select(0, block_group).t();  // [N, B]
        at::Tensor FZ = -qw.zeros.to(at::kDouble);
        if (qw.offset.defined()) FZ = FZ + qw.offset.to(at::kDouble);
        const at::Tensor m_exact = S.to(at::kDouble) * FZ.index_select(0, block_group).t();
        at::Tensor d = qw.scales.index_select(0, block_group).t().contiguous();  // fp16 [N, B]
        at::Tensor m = m_exact.to(at::kHalf);
        const at::Tensor steps = (m.to(at::kDouble) - m_exact).abs() / S.to(at::kDouble);
        rep_.max_m_error_steps = std::max(rep_.max_m_error_steps, steps.max().item<double>());
        at::Tensor codes = lota::quant::unpack_codes(qw).t().contiguous();  // [N, K]
        if (permute) {
            codes = permute_heads(codes, heads);
            d = permute_heads(d, heads);
            m = permute_heads(m, heads);
        }
        w_.add_tensor(gguf + ".weight", GgmlType::Q4_1, codes.sizes().vec(), lota::io::q4_1_blocks(codes, d, m));
        n_params_ += codes.numel();
        ++rep_.q4_1;
    }

    const ExportOptions& o_;
    lota::io::ModelFiles files_;
    lota::io::ModelConfig cfg_;
    std::optional<lota::io::GptqConfig> gptq_;
    lota::io::GgufWriter w_;
    ExportReport rep_;
    uint32_t file_type_dense_ = 0;
    int64_t n_params_ = 0;
};

int run_export_hf(const ExportOptions& o) {
    const lota::cli::HfExportReport r = lota::cli::hf_export(o.model, o.out, o.dtype, o.overwrite);
    const nlohmann::json j = {{"out", o.out},
                              {"format", o.format},
                              {"dtype", o.dtype},
                              {"dequantized_tensors", r.dequantized},
                              {"dense_tensors", r.dense},
                              {"max_abs_rounding_error", r.max_abs_error},
                              {"max_rounding_grid_steps", r.max_error_steps}};
    const std::string text = lota::strfmt("exported %s -> %s (%s): %lld quantized linears dequantized to "
                                          "S·(Q − Z + F) and rounded (largest rounding %.3g grid steps), %lld "
                                          "tensors converted; largest |rounding error| %.3g",
                                          o.model.c_str(), o.out.c_str(), o.dtype.c_str(), (long long)r.dequantized,
                                          r.max_error_steps, (long long)r.dense, r.max_abs_error);
    lota::cli::result_print(o.json, j, text);
    return 0;
}

int run_export_gptq(const ExportOptions& o) {
    const lota::cli::GptqExportReport r = lota::cli::gptq_export(o.model, o.out, o.allow_lossy, o.overwrite);
    const nlohmann::json j = {{"out", o.out},
                              {"format", o.format},
                              {"linears", r.linears},
                              {"offsets_rounded", r.offsets_rounded},
                              {"zeros_clamped", r.clamped},
                              {"max_error_grid_steps", r.max_error_steps}};
    std::string text = lota::strfmt("exported %s -> %s (GPTQ v1): %lld quantized linears", o.model.c_str(),
                                    o.out.c_str(), (long long)r.linears);
    text += r.offsets_rounded == 0
                ? ", lossless"
                : lota::strfmt("; LoTA offsets of %lld rounded into the zero points (largest error %.3g grid steps%s)",
                               (long long)r.offsets_rounded, r.max_error_steps,
                               r.clamped ? lota::strfmt(", %lld zeros clamped to the grid", (long long)r.clamped).c_str()
                                         : "");
    lota::cli::result_print(o.json, j, text);
    return 0;
}

int run_export(const ExportOptions& o) {
    if (o.format == "hf") return run_export_hf(o);
    if (o.format == "gptq") return run_export_gptq(o);
    LOTA_CHECK(o.format == "gguf", "--format %s is not built (gguf, hf, gptq)", o.format.c_str());
    LOTA_CHECK(o.overwrite || !fs::exists(o.out), "%s: exists; pass --overwrite to replace it", o.out.c_str());
    const ExportReport r = Exporter(o).run();
    const nlohmann::json j = {{"out", o.out},
                              {"format", o.format},
                              {"q4_1_tensors", r.q4_1},
                              {"lossy_f16_tensors", r.lossy_f16},
                              {"dense_tensors", r.dense},
                              {"max_m_rounding_grid_steps", r.max_m_error_steps},
                              {"max_lossy_abs_error", r.max_lossy_error}};
    std::string text = lota::strfmt("exported %s -> %s: %lld Q4_1 (lossless up to m's fp16 rounding: at most %.3g "
                                    "grid steps), %lld dense (norms and biases in F32, the others as stored)",
                                    o.model.c_str(), o.out.c_str(), (long long)r.q4_1, r.max_m_error_steps,
                                    (long long)r.dense);
    if (r.lossy_f16)
        text += lota::strfmt(", %lld written lossy as F16 (max |error| %.3g)", (long long)r.lossy_f16,
                             r.max_lossy_error);
    lota::cli::result_print(o.json, j, text);
    return 0;
}

}  // namespace

LOTA_COMMAND("export", "write a model for another engine: --format gguf (llama.cpp), hf (dense) or gptq", [](CLI::App& sub) {
    auto o = std::make_shared<ExportOptions>();
    lota::cli::add_model_flag(sub, o->model, "16-bit, GPTQ or LoTA-merged");
    lota::cli::add_out_flag(sub, o->out, "the .gguf file, or the hf directory (must not exist unless --overwrite)")
        ->required();
    sub.add_option("--format", o->format,
                   "gguf: one .gguf file for llama.cpp; hf: a dense HF directory; gptq: a GPTQ v1 checkpoint "
                   "(integer zeros, no LoTA offsets) for GPTQModel and transformers")
        ->check(CLI::IsMember({"gguf", "hf", "gptq"}))
        ->capture_default_str();
    sub.add_option("--dtype", o->dtype, "hf: dtype of the written weights (bf16 or f16)")
        ->check(CLI::IsMember({"bf16", "f16"}))
        ->capture_default_str();
    sub.add_flag("--allow-lossy", o->allow_lossy,
                 "gguf: write quantized linears that Q4_1 cannot hold exactly (8-bit, act-order, groups not a "
                 "multiple of 32) as F16 instead of refusing; gptq: round Z − F to integer zero points");
    sub.add_flag("--overwrite", o->overwrite, "replace an existing --out file");
    lota::cli::add_json_flag(sub, o->json);
    return lota::cli::CommandRun([o]() { return run_export(*o); });
});
