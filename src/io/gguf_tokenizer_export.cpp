// tokenizer.ggml.* metadata for a GGUF file from an HF model directory's tokenizer.json and
// tokenizer_config.json, with the keys llama.cpp's convert_hf_to_gguf writes (gguf-py's vocab classes
// and SpecialVocab). Byte-level BPE becomes llama.cpp's "gpt2" model; for llama and mistral, a BPE with
// byte fallback and a Sequence decoder (Llama 2, Mistral: ▁ for spaces, <0xXX> byte tokens) becomes its
// "llama" model, as the converter decides (gguf-py LlamaHfVocab). Other tokenizers (sentencepiece
// tokenizer.model without tokenizer.json, WordPiece, Unigram) are refused. The reverse direction,
// GGUF metadata to tokenizer.json, is gguf_tokenizer.h.
#include "io/gguf_tokenizer_export.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gguf_names.h"
#include "io/gguf_writer.h"
#include "io/hf_config.h"
#include "io/mapped_file.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::io {
namespace {

namespace fs = std::filesystem;

// tokenizer_config.json's "<typ>_token": a string or an object with "content".
std::optional<std::string> config_token_entry(const nlohmann::json& e) {
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("content") && e["content"].is_string()) return e["content"].get<std::string>();
    return std::nullopt;
}
std::optional<std::string> config_token(const nlohmann::json& tc, const std::string& key) {
    return tc.contains(key) ? config_token_entry(tc[key]) : std::nullopt;
}

// Added tokens that llama.cpp's converter makes control tokens although tokenizer.json does not mark
// them special (its does_token_look_special).
bool looks_special(const std::string& t) {
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
AddSpecial add_special(const nlohmann::json& tj, const nlohmann::json& tc) {
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

nlohmann::json tokenizer_config(const std::string& model_dir) {
    const std::string p = model_dir + "/tokenizer_config.json";
    return fs::exists(p) ? nlohmann::json::parse(file_read_text(p)) : nlohmann::json::object();
}

// tokenizer.ggml.pre: llama.cpp names each pre-tokenizer it implements; the name is the one its
// converter writes for this tokenizer.json's pre-tokenizer (gguf_names::PRE_EXPORT). Anything else is
// refused: llama.cpp refuses to load a file whose name it does not know.
std::string pre_name(const nlohmann::json& tj, const std::string& path) {
    namespace names = gguf_names;
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

// −(rank of the first merge whose joined text is the token), −(number of merges) for the rest.
std::vector<float> merge_scores(const nlohmann::json& model, const std::vector<std::string>& tokens,
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
        float& s = scores[static_cast<size_t>(json_int(*it, path + ": model.vocab id", 0, (int64_t)scores.size() - 1))];
        if (s == none) s = -static_cast<float>(rank);
    }
    return scores;
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
void write_tokenizer_llama(GgufWriter& w, const std::string& model_dir, const nlohmann::json& tj,
                           const nlohmann::json& tc, const std::string& path) {
    namespace names = gguf_names;
    const nlohmann::json& vocab = tj.at("model").at("vocab");
    const int64_t n_base = static_cast<int64_t>(vocab.size());
    std::vector<std::string> tokens(static_cast<size_t>(n_base));
    for (const auto& [text, id_json] : vocab.items()) {
        const int64_t id = json_int(id_json, path + ": the model.vocab id of '" + text + "'");
        LOTA_CHECK(id >= 0 && id < n_base && tokens[id].empty(),
                   "%s: model.vocab id %lld of '%s' is not one of 0..%lld once", path.c_str(), (long long)id,
                   text.c_str(), (long long)n_base - 1);
        tokens[id] = text;
    }
    std::vector<std::pair<int64_t, std::string>> added;  // added tokens, by id
    const nlohmann::json added_json = tj.value("added_tokens", nlohmann::json::array());
    for (const auto& a : added_json) {
        const int64_t id = json_int(a.at("id"), path + ": an added token's id");
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
    w.set_string(names::TOK_MODEL, names::TOK_MODEL_LLAMA);
    w.set_string(names::TOK_PRE, "default");
    w.set_strings(names::TOK_TOKENS, tokens);
    w.set_f32s(names::TOK_SCORES, merge_scores(tj.at("model"), tokens, path));
    w.set_i32s(names::TOK_TOKEN_TYPE, types);
    // Special ids as gguf-py's SpecialVocab finds them: the tokenizer_config.json token among
    // tokenizer.json's added tokens, else config.json's <typ>_token_id; ids past the vocabulary are dropped.
    const nlohmann::json cj = nlohmann::json::parse(file_read_text(model_dir + "/config.json"));
    const std::pair<const char*, const char*> id_keys[] = {{"bos", names::TOK_BOS_ID}, {"eos", names::TOK_EOS_ID},
                                                           {"unk", names::TOK_UNK_ID}, {"sep", names::TOK_SEP_ID},
                                                           {"pad", names::TOK_PAD_ID}, {"mask", names::TOK_MASK_ID}};
    for (const auto& [typ, key] : id_keys) {
        std::optional<int64_t> id;
        if (auto t = config_token(tc, std::string(typ) + "_token"))
            for (const auto& a : added_json)
                if (a.value("content", "") == *t) {
                    id = json_int(a.at("id"), path + ": an added token's id");
                    break;
                }
        const std::string cfg_key = std::string(typ) + "_token_id";
        if (!id && cj.contains(cfg_key) && cj[cfg_key].is_number_integer()) id = cj[cfg_key].get<int64_t>();
        if (id && *id >= 0 && *id < static_cast<int64_t>(tokens.size()))
            w.set_u32(key, static_cast<uint32_t>(*id));
    }
    const AddSpecial add = add_special(tj, tc);
    if (add.bos) w.set_bool(names::TOK_ADD_BOS, *add.bos);
    if (add.eos) w.set_bool(names::TOK_ADD_EOS, *add.eos);
    if (add.sep) w.set_bool(names::TOK_ADD_SEP, *add.sep);
    const text::Tokenizer tok = text::Tokenizer::from_dir(model_dir);
    if (!tok.chat_template().empty()) w.set_string(names::TOK_CHAT_TEMPLATE, tok.chat_template());
}

}  // namespace

void gguf_tokenizer_export(GgufWriter& w, const std::string& model_dir, const ModelConfig& cfg) {
    const bool llama_family = cfg.arch == Arch::LLAMA || cfg.arch == Arch::MISTRAL;
    const std::string path = model_dir + "/tokenizer.json";
    LOTA_CHECK(fs::exists(path), "%s: missing; the GGUF file needs the tokenizer", path.c_str());
    const nlohmann::json tj = nlohmann::json::parse(file_read_text(path));
    const auto& model = tj.at("model");
    const nlohmann::json tc = tokenizer_config(model_dir);
    if (llama_family && tc.contains("add_prefix_space") && tc["add_prefix_space"].is_boolean())
        w.set_bool(gguf_names::TOK_ADD_SPACE_PREFIX, tc["add_prefix_space"].get<bool>());
    const nlohmann::json decoder = tj.value("decoder", nlohmann::json());
    if (llama_family && model.value("type", "") == "BPE" && model.value("byte_fallback", false) &&
        decoder.is_object() && decoder.value("type", "") == "Sequence") {
        write_tokenizer_llama(w, model_dir, tj, tc, path);
        return;
    }
    LOTA_CHECK(model.value("type", "") == "BPE" && tj.dump().find("\"ByteLevel\"") != std::string::npos,
               "%s: only byte-level BPE tokenizers are exported to GGUF (tokenizer.ggml.model \"gpt2\")",
               path.c_str());
    const text::Tokenizer tok = text::Tokenizer::from_dir(model_dir);
    const int64_t n = std::max<int64_t>(tok.vocab_size(), cfg.vocab_size);
    std::vector<std::string> tokens(static_cast<size_t>(n));
    std::vector<int32_t> types(static_cast<size_t>(n), 1);  // 1 normal
    for (int64_t i = 0; i < n; ++i) {
        const std::string t = i < tok.vocab_size() ? tok.id_to_token(static_cast<int32_t>(i)) : "";
        if (t.empty()) {  // ids the tokenizer does not define (vocab padded to a multiple)
            tokens[i] = "[PAD" + std::to_string(i) + "]";
            types[i] = gguf_names::TOKEN_TYPE_UNUSED;  // as llama.cpp's converter marks them
        } else {
            tokens[i] = t;
        }
    }
    if (tj.contains("added_tokens"))
        for (const auto& a : tj["added_tokens"]) {
            const int64_t id = json_int(a.at("id"), path + ": an added token's id");
            if (id >= 0 && id < n) types[id] = a.value("special", false) || looks_special(a.value("content", ""))
                                                   ? 3 : 4;  // control / user-defined
        }
    std::vector<std::string> merges;
    for (const auto& m : model.at("merges"))
        merges.push_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>()
                                      : m.get<std::string>());
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", pre_name(tj, path));
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_i32s("tokenizer.ggml.token_type", types);
    w.set_strings("tokenizer.ggml.merges", merges);
    const int32_t bos = tok.bos_id() >= 0 ? tok.bos_id() : static_cast<int32_t>(cfg.bos_token_id);
    const int32_t eos = tok.eos_id() >= 0          ? tok.eos_id()
                        : cfg.eos_token_ids.empty() ? -1
                                                    : static_cast<int32_t>(cfg.eos_token_ids[0]);
    if (bos >= 0) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
    if (eos >= 0) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
    if (tc.contains("pad_token") && tc["pad_token"].is_string())
        if (auto id = tok.token_to_id(tc["pad_token"].get<std::string>()))
            w.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*id));
    const AddSpecial add = add_special(tj, tc);
    if (add.bos) w.set_bool("tokenizer.ggml.add_bos_token", *add.bos);
    if (add.eos) w.set_bool("tokenizer.ggml.add_eos_token", *add.eos);
    if (add.sep) w.set_bool("tokenizer.ggml.add_sep_token", *add.sep);
    if (!tok.chat_template().empty()) w.set_string("tokenizer.chat_template", tok.chat_template());
}

}  // namespace lota::io
