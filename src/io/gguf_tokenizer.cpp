// tokenizer.json / tokenizer_config.json from GGUF tokenizer metadata; see gguf_tokenizer.h.
// Does not tokenize anything itself (src/text does); it only writes the files HF tokenizers reads.
#include "io/gguf_tokenizer.h"

#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/gguf_names.h"
#include "text/unicode.h"
#include "util/check.h"

namespace lota::io {
namespace {

namespace names = gguf_names;
using ojson = nlohmann::ordered_json;

// Byte-level BPE spelling of vocabulary entries, with the GPT-2 byte alphabet of src/text.
class ByteLevelSpelling {
  public:
    /// True when `token` is valid UTF-8 and every character is in the byte alphabet.
    static bool is_spelled(const std::string& token) {
        if (text::utf8_invalid_at(token) != std::string::npos) return false;
        for (size_t i = 0; i < token.size();)
            if (text::byte_level_byte(text::utf8_next(token, i)) < 0) return false;
        return true;
    }
    /// The token as byte-level BPE spells it: as is when already spelled, else byte by byte.
    static std::string spell(const std::string& token) {
        if (is_spelled(token)) return token;
        std::string out;
        for (unsigned char b : token) out += text::byte_level_char(b);
        return out;
    }
};

ojson added_token(int64_t id, const std::string& content, bool special) {
    return ojson{{"id", id},          {"content", content},    {"single_word", false}, {"lstrip", false},
                 {"rstrip", false},   {"normalized", false},   {"special", special}};
}

ojson pre_tokenizer_for(const std::string& pre) {
    for (const auto& row : names::PRE_SPLITS) {
        if (pre != row.pre) continue;
        ojson split{{"type", "Split"},
                    {"pattern", {{"Regex", row.regex}}},
                    {"behavior", "Isolated"},
                    {"invert", false}};
        ojson byte_level{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
        return ojson{{"type", "Sequence"}, {"pretokenizers", ojson::array({split, byte_level})}};
    }
    return ojson{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
}

// transformers' post-processor: "[bos:0] $A:0 [eos:0]" and "... [bos:1] $B:1 [eos:1]".
ojson post_processor(const std::vector<std::pair<std::string, int64_t>>& bos,
                     const std::vector<std::pair<std::string, int64_t>>& eos) {
    auto piece = [](const std::string& token, int type_id) {
        return ojson{{"SpecialToken", {{"id", token}, {"type_id", type_id}}}};
    };
    auto seq = [](const char* id, int type_id) { return ojson{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
    ojson single = ojson::array(), pair = ojson::array(), specials = ojson::object();
    for (int part = 0; part < 2; ++part) {
        ojson& out = part == 0 ? single : pair;
        for (int type_id = 0; type_id <= part; ++type_id) {
            for (const auto& [tok, id] : bos) out.push_back(piece(tok, type_id));
            out.push_back(seq(type_id == 0 ? "A" : "B", type_id));
            for (const auto& [tok, id] : eos) out.push_back(piece(tok, type_id));
        }
    }
    for (const auto* list : {&bos, &eos})
        for (const auto& [tok, id] : *list) specials[tok] = {{"id", tok}, {"ids", {id}}, {"tokens", {tok}}};
    return ojson{{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

bool bool_or(const GgufFile& g, const char* key, bool fallback) { return g.has(key) ? g.get_bool(key) : fallback; }

}  // namespace

GgufSpecialTokens gguf_special_tokens(const GgufFile& g, int64_t n_vocab) {
    auto read = [&](const char* key) -> std::optional<int64_t> {
        if (!g.has(key)) return std::nullopt;
        const uint64_t id = g.get_uint(key);
        LOTA_CHECK(id < static_cast<uint64_t>(n_vocab), "%s: %s is %llu, expected < vocabulary size %lld",
                   g.path().c_str(), key, (unsigned long long)id, (long long)n_vocab);
        return static_cast<int64_t>(id);
    };
    return GgufSpecialTokens{read(names::TOK_BOS_ID), read(names::TOK_EOS_ID), read(names::TOK_UNK_ID),
                             read(names::TOK_PAD_ID)};
}

GgufTokenizerFiles gguf_tokenizer_build(const GgufFile& g, int64_t model_max_length) {
    const char* p = g.path().c_str();
    const std::string& model = g.get_string(names::TOK_MODEL);
    LOTA_CHECK(model == names::TOK_MODEL_GPT2,
               "%s: tokenizer model '%s' (%s) is not supported; lota import supports 'gpt2' (byte-level BPE)", p,
               model.c_str(), names::TOK_MODEL);
    const auto& tokens = g.get_array(names::TOK_TOKENS, GgufValueType::STRING);
    const int64_t n_vocab = static_cast<int64_t>(tokens.size());
    LOTA_CHECK(n_vocab > 0, "%s: %s is empty", p, names::TOK_TOKENS);
    std::vector<int64_t> types(tokens.size(), 1);
    if (g.has(names::TOK_TOKEN_TYPE)) {
        const auto& tt = g.get_array(names::TOK_TOKEN_TYPE, GgufValueType::INT32);
        LOTA_CHECK(tt.size() == tokens.size(), "%s: %s has %zu entries, expected %lld (one per token)", p,
                   names::TOK_TOKEN_TYPE, tt.size(), (long long)n_vocab);
        for (size_t k = 0; k < tt.size(); ++k) types[k] = tt[k].i;
    }
    const std::string pre = g.has(names::TOK_PRE) ? g.get_string(names::TOK_PRE) : "";

    const ByteLevelSpelling spelling;
    ojson vocab = ojson::object();
    std::set<std::string> seen;
    for (int64_t id = 0; id < n_vocab; ++id) {
        std::string spelled = spelling.spell(tokens[id].str);
        LOTA_CHECK(seen.insert(spelled).second, "%s: %s has token '%s' twice (second at id %lld)", p, names::TOK_TOKENS,
                   spelled.c_str(), (long long)id);
        vocab[spelled] = id;
    }
    ojson merges = ojson::array();
    if (g.has(names::TOK_MERGES)) {
        const auto& ms = g.get_array(names::TOK_MERGES, GgufValueType::STRING);
        for (size_t k = 0; k < ms.size(); ++k) {
            const std::string& m = ms[k].str;
            const size_t sp = m.find(' ');
            LOTA_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
                       "%s: %s[%zu] is '%s', expected two tokens separated by one space", p, names::TOK_MERGES, k,
                       m.c_str());
            merges.push_back(ojson::array({m.substr(0, sp), m.substr(sp + 1)}));
        }
    }

    // Added tokens, by id: CONTROL ones spelled in the byte alphabet as special (others are llama.cpp
    // mislabels transformers skips), USER_DEFINED ones present in the vocabulary as plain.
    const GgufSpecialTokens special = gguf_special_tokens(g, n_vocab);
    ojson added = ojson::array();
    for (int64_t id = 0; id < n_vocab; ++id) {
        const std::string& tok = tokens[id].str;
        if (types[id] == names::TOKEN_TYPE_CONTROL && spelling.is_spelled(tok))
            added.push_back(added_token(id, tok, true));
        else if (types[id] == names::TOKEN_TYPE_USER_DEFINED && vocab.contains(tok))
            added.push_back(added_token(id, tok, false));
    }

    const bool add_bos = bool_or(g, names::TOK_ADD_BOS, false);
    const bool add_eos = bool_or(g, names::TOK_ADD_EOS, false);
    std::vector<std::pair<std::string, int64_t>> bos, eos;
    if (add_bos && special.bos) bos.emplace_back(tokens[*special.bos].str, *special.bos);
    if (add_eos && special.eos) eos.emplace_back(tokens[*special.eos].str, *special.eos);

    ojson tj;
    tj["version"] = "1.0";
    tj["truncation"] = nullptr;
    tj["padding"] = nullptr;
    tj["added_tokens"] = added;
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = pre_tokenizer_for(pre);
    tj["post_processor"] = post_processor(bos, eos);
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    tj["model"] = {{"type", "BPE"},        {"dropout", nullptr},       {"unk_token", nullptr},
                   {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                   {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
                   {"merges", merges}};

    ojson cfg;
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
    cfg["add_bos_token"] = add_bos;
    cfg["add_eos_token"] = add_eos;
    const std::pair<const char*, std::optional<int64_t>> named[] = {
        {"bos_token", special.bos}, {"eos_token", special.eos}, {"unk_token", special.unk}, {"pad_token", special.pad}};
    for (const auto& [field, id] : named)
        if (id) cfg[field] = tokens[*id].str;
    if (g.has(names::TOK_CHAT_TEMPLATE)) cfg["chat_template"] = g.get_string(names::TOK_CHAT_TEMPLATE);
    cfg["model_max_length"] = model_max_length;
    cfg["clean_up_tokenization_spaces"] = false;
    try {
        return GgufTokenizerFiles{tj.dump(2), cfg.dump(2)};
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: tokenizer metadata holds a string that is not valid UTF-8: %s", p, e.what());
    }
}

}  // namespace lota::io
