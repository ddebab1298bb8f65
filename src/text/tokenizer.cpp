// Tokenizer (see tokenizer.h): loading tokenizer.json / tokenizer_config.json, the added-token
// vocabulary (HF AddedVocabulary: leftmost-longest matching, lstrip/rstrip/single_word), and the
// encode/decode pipelines.
#include "text/tokenizer.h"

#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "text/bpe.h"
#include "text/tokenizer_parts.h"
#include "text/unicode.h"
#include "text/unicode_regex.h"
#include "util/check.h"
#include "util/json_read.h"
#include "util/log.h"

namespace lota::text {
namespace {

using Json = nlohmann::json;
constexpr size_t k_max_json_bytes = size_t(1) << 30;

struct AddedToken {
    std::string content;
    bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
    bool operator==(const AddedToken& o) const {
        return content == o.content && single_word == o.single_word && lstrip == o.lstrip && rstrip == o.rstrip &&
               normalized == o.normalized && special == o.special;
    }
};

// Leftmost-longest literal matcher over byte strings (what HF's Aho-Corasick trie computes).
struct Matcher {
    std::vector<std::pair<std::string, int32_t>> patterns;
    std::vector<std::vector<size_t>> by_first = std::vector<std::vector<size_t>>(256);  // longest first

    void build() {
        for (auto& v : by_first) v.clear();
        for (size_t i = 0; i < patterns.size(); ++i)
            if (!patterns[i].first.empty())
                by_first[static_cast<unsigned char>(patterns[i].first[0])].push_back(i);
        for (auto& v : by_first)
            std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) {
                return patterns[a].first.size() > patterns[b].first.size();
            });
    }
    bool empty() const { return patterns.empty(); }
    // Next match at or after pos: (start, end, id); start == npos when none.
    std::tuple<size_t, size_t, int32_t> find(const std::string& s, size_t pos) const {
        for (size_t i = pos; i < s.size(); ++i) {
            for (size_t k : by_first[static_cast<unsigned char>(s[i])]) {
                const std::string& p = patterns[k].first;
                if (s.compare(i, p.size(), p) == 0) return {i, i + p.size(), patterns[k].second};
            }
        }
        return {std::string::npos, 0, -1};
    }
};

struct Split {
    detail::Piece piece;
    int32_t id = -1;  // added token id, or -1 for text still to tokenize
};

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    LOTA_CHECK(f.good(), "%s: cannot open file", path.c_str());
    f.seekg(0, std::ios::end);
    auto size = static_cast<size_t>(f.tellg());
    LOTA_CHECK(size <= k_max_json_bytes, "%s: file too large (%zu bytes)", path.c_str(), size);
    f.seekg(0);
    std::string data(size, '\0');
    f.read(data.data(), static_cast<std::streamsize>(size));
    LOTA_CHECK(f.good() || size == 0, "%s: read failed", path.c_str());
    return data;
}

Json parse_json(const std::string& text, const std::string& file) {
    try {
        return json_parse(text, file);
    } catch (const Json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", file.c_str(), e.what());
    }
}

// A special-token field of tokenizer_config.json: "text", {"content": "text", ...} or null.
std::string config_token(const Json& cfg, const char* key, const std::string& file) {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    LOTA_FAIL("%s: \"%s\" must be a string, {\"content\": ...} or null", file.c_str(), key);
}

bool is_word_end(const Regex& word_char, const std::string& s, bool at_end) {
    // Rust's \w$ on the text before a match / ^\w on the text after it.
    if (s.empty()) return false;
    size_t i = 0;
    if (at_end) {
        i = s.size() - 1;
        while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    }
    size_t j = i;
    utf8_next(s, j);
    return word_char.search(s.substr(i, j - i));
}

}  // namespace

struct Tokenizer::Impl {
    std::string file;
    std::shared_ptr<const Bpe> model;
    std::unique_ptr<detail::Normalizer> normalizer;
    std::unique_ptr<detail::PreTokenizer> pre_tokenizer;
    std::unique_ptr<detail::Decoder> decoder;
    std::unique_ptr<detail::PostProcessor> post_processor;

    std::unordered_map<std::string, int32_t> added_map;
    std::unordered_map<int32_t, AddedToken> added_r;
    std::unordered_map<int32_t, std::string> normalized_cache;
    std::unordered_set<std::string> special_set;
    Matcher raw_matcher, normalized_matcher;
    std::unique_ptr<Regex> word_char;

    bool fallback_bos = false, fallback_eos = false;  // when tokenizer.json has no post_processor
    std::string bos, eos, chat_template;
    int32_t bos_id = -1, eos_id = -1;

    std::optional<int32_t> token_to_id(const std::string& t) const {
        auto it = added_map.find(t);
        if (it != added_map.end()) return it->second;
        return model->token_to_id(t);
    }

    void add_tokens(const std::vector<AddedToken>& tokens);
    std::vector<Split> find_matches(const detail::Piece& p, const Matcher& m) const;
    void encode_text(const std::string& text, std::vector<int32_t>& ids) const;
};

void Tokenizer::Impl::add_tokens(const std::vector<AddedToken>& tokens) {
    // HF AddedVocabulary::add_tokens: ids come from the existing vocabulary when the content is
    // already there, otherwise they are assigned after the model's vocabulary.
    auto next_id = static_cast<int32_t>(model->vocab_count());
    for (const AddedToken& t : tokens) {
        if (t.content.empty()) continue;
        auto known = added_map.find(t.content);
        if (known != added_map.end() && added_r.count(known->second) && added_r[known->second] == t) continue;
        int32_t id;
        if (auto existing = token_to_id(t.content)) id = *existing;
        else id = next_id++;
        if (t.normalized && normalizer) {
            std::string normed = normalizer->normalize(t.content);
            if (normed != t.content) normalized_cache[id] = normed;
        }
        added_map[t.content] = id;
        if (t.special) special_set.insert(t.content);
        added_r[id] = t;
    }
    for (const auto& [id, t] : added_r) {
        if (t.normalized) {
            auto c = normalized_cache.find(id);
            normalized_matcher.patterns.emplace_back(c == normalized_cache.end() ? t.content : c->second, id);
        } else {
            raw_matcher.patterns.emplace_back(t.content, id);
        }
    }
    raw_matcher.build();
    normalized_matcher.build();
}

std::vector<Split> Tokenizer::Impl::find_matches(const detail::Piece& p, const Matcher& m) const {
    const std::string& s = p.text;
    if (m.empty() || s.empty()) return {Split{p, -1}};
    std::vector<Split> out;
    auto push = [&](size_t b, size_t e, int32_t id) {
        out.push_back(Split{detail::Piece{s.substr(b, e - b), p.at_start && b == 0}, id});
    };
    size_t start_offset = 0;
    for (size_t pos = 0;;) {
        auto [mb, me, id] = m.find(s, pos);
        if (mb == std::string::npos) break;
        pos = me;
        size_t start = mb, stop = me;
        const AddedToken& t = added_r.at(id);
        if (t.single_word) {
            bool start_space = start == 0 || !is_word_end(*word_char, s.substr(0, start), true);
            bool stop_space = stop == s.size() || !is_word_end(*word_char, s.substr(stop), false);
            if (!start_space || !stop_space) continue;
        }
        if (t.lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k = ns - 1;
                while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
                size_t j = k;
                if (!is_white_space(utf8_next(s, j))) break;
                ns = k;
            }
            start = std::max(ns, start_offset);
        }
        if (t.rstrip) {
            for (size_t j = stop; j < s.size();) {
                if (!is_white_space(utf8_next(s, j))) break;
                stop = j;
            }
        }
        if (start_offset < start) push(start_offset, start, -1);
        push(start, stop, id);
        start_offset = stop;
    }
    if (start_offset != s.size()) push(start_offset, s.size(), -1);
    return out;
}

void Tokenizer::Impl::encode_text(const std::string& text, std::vector<int32_t>& ids) const {
    // 1. Non-normalized added tokens on the raw text; 2. normalize the rest and extract the
    // normalized added tokens; 3. pre-tokenize and run the model on what remains.
    std::vector<Split> splits;
    for (Split& a : find_matches(detail::Piece{text, true}, raw_matcher)) {
        if (a.piece.text.empty()) continue;
        if (a.id >= 0) {
            splits.push_back(std::move(a));
            continue;
        }
        if (normalizer) a.piece.text = normalizer->normalize(a.piece.text);
        for (Split& b : find_matches(a.piece, normalized_matcher))
            if (!b.piece.text.empty()) splits.push_back(std::move(b));
    }
    std::vector<detail::Piece> words;
    for (const Split& sp : splits) {
        if (sp.id >= 0) {
            ids.push_back(sp.id);
            continue;
        }
        words.assign(1, sp.piece);
        if (pre_tokenizer) pre_tokenizer->pre_tokenize(words);
        for (const detail::Piece& w : words) model->tokenize(w.text, ids);
    }
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
    std::string tok_path = dir + "/tokenizer.json";
    std::string cfg_path = dir + "/tokenizer_config.json";
    std::string tok_text = read_file(tok_path);
    std::string cfg_text;
    if (std::ifstream(cfg_path).good()) cfg_text = read_file(cfg_path);
    Tokenizer t = from_json_text(tok_text, cfg_text, dir);
    if (t.impl_->chat_template.empty()) {
        std::string jinja = dir + "/chat_template.jinja";
        if (std::ifstream(jinja).good()) {
            auto impl = std::const_pointer_cast<Impl>(t.impl_);
            impl->chat_template = read_file(jinja);
        }
    }
    return t;
}

Tokenizer Tokenizer::from_json_text(const std::string& tokenizer_json, const std::string& config_json,
                                    const std::string& name) {
    auto impl = std::make_shared<Impl>();
    const std::string file = name + "/tokenizer.json";
    const std::string cfg_file = name + "/tokenizer_config.json";
    impl->file = file;
    Json j = parse_json(tokenizer_json, file);
    try {
        LOTA_CHECK(j.is_object(), "%s: top level is not a JSON object", file.c_str());
        auto model = j.find("model");
        LOTA_CHECK(model != j.end() && model->is_object(), "%s: no \"model\" object", file.c_str());
        std::string type = model->value("type", model->contains("merges") ? "BPE" : "");
        LOTA_CHECK(type == "BPE", "%s: unsupported model type '%s' (only BPE tokenizers are supported)",
                   file.c_str(), type.c_str());
        for (const char* key : {"truncation", "padding"})
            if (j.contains(key) && !j[key].is_null())
                LOTA_LOG_WARN("%s: \"%s\" is set and ignored (encode returns untruncated, unpadded ids)",
                              file.c_str(), key);
        impl->model = Bpe::from_json(*model, file);
        impl->normalizer = detail::make_normalizer(j.value("normalizer", Json()), file);
        impl->pre_tokenizer = detail::make_pre_tokenizer(j.value("pre_tokenizer", Json()), file);
        impl->decoder = detail::make_decoder(j.value("decoder", Json()), file);
        impl->post_processor = detail::make_post_processor(j.value("post_processor", Json()), file);

        std::vector<AddedToken> added;
        if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
            LOTA_CHECK(j["added_tokens"].is_array(), "%s: \"added_tokens\" is not an array", file.c_str());
            for (const Json& a : j["added_tokens"]) {
                LOTA_CHECK(a.is_object() && a.contains("content") && a["content"].is_string(),
                           "%s: added token without a string \"content\"", file.c_str());
                AddedToken t;
                t.content = a["content"].get<std::string>();
                t.special = a.value("special", false);
                t.normalized = a.value("normalized", !t.special);
                t.single_word = a.value("single_word", false);
                t.lstrip = a.value("lstrip", false);
                t.rstrip = a.value("rstrip", false);
                added.push_back(std::move(t));
                if (a.contains("id") && a["id"].is_number()) {
                    const std::string what = file + ": the id of added token '" + added.back().content + "'";
                    const int64_t id = json_int(a["id"], what, 0, INT32_MAX);
                    auto known = impl->token_to_id(added.back().content);
                    if (known && *known != id)
                        LOTA_LOG_WARN("%s: added token '%s' has id %lld but the vocabulary says %d", file.c_str(),
                                      added.back().content.c_str(), (long long)id, *known);
                }
            }
        }
        impl->word_char =
            std::make_unique<Regex>("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]", "word characters");
        impl->add_tokens(added);
    } catch (const Json::exception& e) {
        LOTA_FAIL("%s: unexpected JSON structure: %s", file.c_str(), e.what());
    }

    if (!config_json.empty()) {
        Json cfg = parse_json(config_json, cfg_file);
        LOTA_CHECK(cfg.is_object(), "%s: top level is not a JSON object", cfg_file.c_str());
        impl->bos = config_token(cfg, "bos_token", cfg_file);
        impl->eos = config_token(cfg, "eos_token", cfg_file);
        if (!impl->post_processor) {
            impl->fallback_bos = cfg.value("add_bos_token", false) && !impl->bos.empty();
            impl->fallback_eos = cfg.value("add_eos_token", false) && !impl->eos.empty();
        }
        auto tmpl = cfg.find("chat_template");
        if (tmpl != cfg.end() && tmpl->is_string()) {
            impl->chat_template = tmpl->get<std::string>();
        } else if (tmpl != cfg.end() && tmpl->is_array()) {
            // A list of {"name", "template"}: the one named "default", else the first.
            for (const Json& t : *tmpl) {
                LOTA_CHECK(t.is_object() && t.contains("template") && t["template"].is_string(),
                           "%s: chat_template list entries must be {\"name\", \"template\"}", cfg_file.c_str());
                if (impl->chat_template.empty() || t.value("name", "") == "default")
                    impl->chat_template = t["template"].get<std::string>();
            }
        } else if (tmpl != cfg.end() && !tmpl->is_null()) {
            LOTA_FAIL("%s: chat_template must be a string or a list", cfg_file.c_str());
        }
    }
    if (!impl->bos.empty()) impl->bos_id = impl->token_to_id(impl->bos).value_or(-1);
    if (!impl->eos.empty()) impl->eos_id = impl->token_to_id(impl->eos).value_or(-1);
    if (impl->fallback_bos && impl->bos_id < 0) impl->fallback_bos = false;
    if (impl->fallback_eos && impl->eos_id < 0) impl->fallback_eos = false;
    return Tokenizer(impl);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
    size_t bad = utf8_invalid_at(text);
    LOTA_CHECK(bad == std::string::npos, "tokenizer %s: input is not valid UTF-8 (byte %zu)", impl_->file.c_str(),
               bad);
    std::vector<int32_t> ids;
    impl_->encode_text(text, ids);
    if (add_special_tokens) {
        if (impl_->post_processor) {
            impl_->post_processor->process(ids);
        } else {
            if (impl_->fallback_bos) ids.insert(ids.begin(), impl_->bos_id);
            if (impl_->fallback_eos) ids.push_back(impl_->eos_id);
        }
    }
    return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        std::string tok;
        auto a = impl_->added_r.find(id);
        if (a != impl_->added_r.end()) {
            auto c = impl_->normalized_cache.find(id);
            tok = c != impl_->normalized_cache.end() ? c->second : a->second.content;
        } else if (const std::string* m = impl_->model->id_to_token(id)) {
            tok = *m;
        } else {
            continue;
        }
        if (skip_special_tokens && impl_->special_set.count(tok)) continue;
        tokens.push_back(std::move(tok));
    }
    if (!impl_->decoder) {
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
        return out;
    }
    impl_->decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

int64_t Tokenizer::vocab_size() const {
    int64_t m = impl_->model->max_id();
    for (const auto& [id, t] : impl_->added_r) m = std::max<int64_t>(m, id);
    return m + 1;
}

std::optional<int32_t> Tokenizer::token_to_id(const std::string& token) const { return impl_->token_to_id(token); }

std::string Tokenizer::id_to_token(int32_t id) const {
    auto a = impl_->added_r.find(id);
    if (a != impl_->added_r.end()) return a->second.content;
    const std::string* m = impl_->model->id_to_token(id);
    return m ? *m : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
    auto a = impl_->added_r.find(id);
    return a != impl_->added_r.end() && a->second.special;
}

int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }
const std::string& Tokenizer::bos_token() const { return impl_->bos; }
const std::string& Tokenizer::eos_token() const { return impl_->eos; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

std::vector<int32_t> Tokenizer::stop_ids() const {
    std::vector<int32_t> out;
    if (impl_->eos_id >= 0) out.push_back(impl_->eos_id);
    for (const char* name : {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>"}) {
        // Only added special tokens count: Qwen's vocabulary has "</s>" as ordinary text.
        auto id = impl_->added_map.find(name);
        if (id == impl_->added_map.end() || !is_special(id->second)) continue;
        if (std::find(out.begin(), out.end(), id->second) == out.end()) out.push_back(id->second);
    }
    return out;
}

}  // namespace lota::text
