// Decoders and post-processors of tokenizer.json (see tokenizer_parts.h), following HF
// tokenizers' decode_chain semantics: ByteLevel joins all bytes and decodes them lossily,
// ByteFallback turns runs of <0xNN> tokens into text (one U+FFFD per byte when invalid UTF-8),
// Fuse concatenates, Strip and Replace act per token.
#include <cstdlib>
#include <map>

#include "text/tokenizer_parts.h"
#include "text/unicode.h"
#include "text/unicode_regex.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::text::detail {
namespace {

using Json = nlohmann::json;

class SequenceDecoder : public Decoder {
  public:
    std::vector<std::unique_ptr<Decoder>> parts;
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& p : parts) p->decode_chain(tokens);
    }
};

class ByteLevelDecoder : public Decoder {
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string bytes;
        for (const std::string& t : tokens) {
            std::string mapped;
            bool all = true;
            for (size_t i = 0; i < t.size();) {
                int b = byte_level_byte(utf8_next(t, i));
                if (b < 0) {
                    all = false;
                    break;
                }
                mapped += static_cast<char>(b);
            }
            bytes += all ? mapped : t;
        }
        tokens.assign(1, utf8_lossy(bytes));
    }
};

class ReplaceDecoder : public Decoder {
  public:
    ReplaceDecoder(const Json& j, const std::string& file) : content(json_string(j, "content", file, "Replace decoder")) {
        auto [is_regex, text] = json_pattern(j.at("pattern"), file, "Replace decoder");
        if (is_regex) regex = std::make_unique<Regex>(text, file + ": Replace decoder");
        else literal = text;
        LOTA_CHECK(is_regex || !literal.empty(), "%s: Replace decoder: empty String pattern", file.c_str());
    }
    std::string literal, content;
    std::unique_ptr<Regex> regex;
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::string& t : tokens) {
            if (!regex) {
                t = replace_all(t, literal, content);
                continue;
            }
            std::string out;
            size_t prev = 0;
            for (auto [b, e] : regex->find_all(t)) {
                out.append(t, prev, b - prev);
                out += content;
                prev = e;
            }
            out.append(t, prev, std::string::npos);
            t = std::move(out);
        }
    }
};

// Rust's u8::from_str_radix(s, 16) for the two characters of "<0xNN>" (a leading '+' is allowed).
int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    auto hex = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (t[3] == '+') return hex(t[4]);
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder : public Decoder {
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<std::string> out;
        std::string pending;
        auto flush = [&] {
            if (pending.empty()) return;
            if (utf8_invalid_at(pending) == std::string::npos) out.push_back(pending);
            else
                for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
            pending.clear();
        };
        for (std::string& t : tokens) {
            int b = parse_byte_token(t);
            if (b >= 0) {
                pending += static_cast<char>(b);
            } else {
                flush();
                out.push_back(std::move(t));
            }
        }
        flush();
        tokens = std::move(out);
    }
};

class FuseDecoder : public Decoder {
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, all);
    }
};

class StripDecoder : public Decoder {
  public:
    char32_t content = ' ';
    size_t start = 0, stop = 0;
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::string& t : tokens) {
            std::vector<char32_t> chars;
            for (size_t i = 0; i < t.size();) chars.push_back(utf8_next(t, i));
            size_t b = 0, e = chars.size();
            for (size_t i = 0; i < start && i < chars.size() && chars[i] == content; ++i) b = i + 1;
            for (size_t i = 0; i < stop && i < chars.size() && chars[chars.size() - 1 - i] == content; ++i)
                e = chars.size() - 1 - i;
            std::string out;
            for (size_t i = b; i < e; ++i) utf8_append(out, chars[i]);
            t = std::move(out);
        }
    }
};

class MetaspaceDecoder : public Decoder {
  public:
    std::string replacement;
    bool prepend = true;  // prepend_scheme != never
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = replace_all(tokens[i], replacement, i == 0 && prepend ? "" : " ");
    }
};

class SequenceProcessor : public PostProcessor {
  public:
    std::vector<std::unique_ptr<PostProcessor>> parts;
    void process(std::vector<int32_t>& ids) const override {
        for (const auto& p : parts) p->process(ids);
    }
};

class NoOpProcessor : public PostProcessor {
    void process(std::vector<int32_t>&) const override {}
};

// TemplateProcessing (single template) and Roberta/Bert processing (cls A sep).
class TemplateProcessor : public PostProcessor {
  public:
    std::vector<std::vector<int32_t>> items;  // empty vector stands for the sequence
    void process(std::vector<int32_t>& ids) const override {
        std::vector<int32_t> out;
        for (const auto& it : items) {
            if (it.empty()) out.insert(out.end(), ids.begin(), ids.end());
            else out.insert(out.end(), it.begin(), it.end());
        }
        ids = std::move(out);
    }
};

int32_t token_pair_id(const Json& j, const char* key, const std::string& file, const char* what) {
    auto it = j.find(key);
    LOTA_CHECK(it != j.end() && it->is_array() && it->size() == 2 && (*it)[1].is_number_integer(),
               "%s: %s: \"%s\" must be [token, id]", file.c_str(), what, key);
    return static_cast<int32_t>(json_int((*it)[1], strfmt("%s: %s: the id of \"%s\"", file.c_str(), what, key), 0,
                                         INT32_MAX));
}

std::unique_ptr<PostProcessor> make_template(const Json& j, const std::string& file) {
    auto t = std::make_unique<TemplateProcessor>();
    auto single = j.find("single");
    LOTA_CHECK(single != j.end() && single->is_array(), "%s: TemplateProcessing has no \"single\" template",
               file.c_str());
    const Json specials = j.value("special_tokens", Json::object());
    for (const auto& item : *single) {
        if (item.contains("Sequence")) {
            t->items.emplace_back();
        } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id")) {
            std::string name = item["SpecialToken"]["id"].get<std::string>();
            LOTA_CHECK(specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array(),
                       "%s: TemplateProcessing uses special token '%s' missing from special_tokens",
                       file.c_str(), name.c_str());
            std::vector<int32_t> ids;
            for (const Json& id : specials[name]["ids"])
                ids.push_back(static_cast<int32_t>(json_int(
                    id, strfmt("%s: TemplateProcessing special token '%s': an id", file.c_str(), name.c_str()), 0,
                    INT32_MAX)));
            LOTA_CHECK(!ids.empty(), "%s: TemplateProcessing special token '%s' has no ids", file.c_str(),
                       name.c_str());
            t->items.push_back(std::move(ids));
        } else {
            LOTA_FAIL("%s: TemplateProcessing: unsupported template item %s", file.c_str(), item.dump().c_str());
        }
    }
    return t;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& file, int depth) {
    if (j.is_null()) return nullptr;
    std::string type = json_type(j, file, "decoder");
    if (type == "Sequence") {
        check_sequence_depth(depth, file, "decoder");
        auto seq = std::make_unique<SequenceDecoder>();
        LOTA_CHECK(j.contains("decoders") && j["decoders"].is_array(), "%s: Sequence decoder without \"decoders\"",
                   file.c_str());
        for (const auto& d : j["decoders"])
            if (auto p = make_decoder(d, file, depth + 1)) seq->parts.push_back(std::move(p));
        return seq;
    }
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Replace") return std::make_unique<ReplaceDecoder>(j, file);
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        auto s = std::make_unique<StripDecoder>();
        std::string c = json_string(j, "content", file, "Strip decoder");
        size_t i = 0;
        LOTA_CHECK(!c.empty() && (s->content = utf8_next(c, i), i == c.size()),
                   "%s: Strip decoder content must be one character", file.c_str());
        s->start = static_cast<size_t>(json_int_or(j, "start", 0, file + ": Strip decoder \"start\"", 0, INT32_MAX));
        s->stop = static_cast<size_t>(json_int_or(j, "stop", 0, file + ": Strip decoder \"stop\"", 0, INT32_MAX));
        return s;
    }
    if (type == "Metaspace") {
        auto m = std::make_unique<MetaspaceDecoder>();
        m->replacement = json_string(j, "replacement", file, "Metaspace decoder");
        if (j.contains("prepend_scheme")) m->prepend = json_string(j, "prepend_scheme", file, "Metaspace") != "never";
        else m->prepend = json_bool(j, "add_prefix_space", true, file, "Metaspace decoder");
        return m;
    }
    LOTA_FAIL("%s: unsupported decoder type '%s' (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, "
              "Strip, Metaspace)",
              file.c_str(), type.c_str());
}

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& file, int depth) {
    if (j.is_null()) return nullptr;
    std::string type = json_type(j, file, "post_processor");
    if (type == "Sequence") {
        check_sequence_depth(depth, file, "post_processor");
        auto seq = std::make_unique<SequenceProcessor>();
        LOTA_CHECK(j.contains("processors") && j["processors"].is_array(),
                   "%s: Sequence post_processor without \"processors\"", file.c_str());
        for (const auto& p : j["processors"])
            if (auto q = make_post_processor(p, file, depth + 1)) seq->parts.push_back(std::move(q));
        return seq;
    }
    if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();  // only trims offsets
    if (type == "TemplateProcessing") return make_template(j, file);
    if (type == "RobertaProcessing" || type == "BertProcessing") {
        auto t = std::make_unique<TemplateProcessor>();
        t->items = {{token_pair_id(j, "cls", file, type.c_str())}, {}, {token_pair_id(j, "sep", file, type.c_str())}};
        return t;
    }
    LOTA_FAIL("%s: unsupported post_processor type '%s' (supported: Sequence, ByteLevel, TemplateProcessing, "
              "RobertaProcessing, BertProcessing)",
              file.c_str(), type.c_str());
}

}  // namespace lota::text::detail
