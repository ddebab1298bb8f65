// Normalizers and pre-tokenizers of tokenizer.json (see tokenizer_parts.h), following HF
// tokenizers: NormalizedString::split's delimiter behaviours, ByteLevel's prefix space and
// GPT-2 regex, Metaspace's prepend schemes.
#include <algorithm>
#include <utility>

#include "text/tokenizer_parts.h"
#include "text/unicode.h"
#include "text/unicode_regex.h"
#include "util/check.h"

namespace lota::text::detail {
namespace {

using Json = nlohmann::json;
using Matches = std::vector<std::pair<size_t, size_t>>;

const char* const k_gpt2_pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum class Behavior { ISOLATED, REMOVED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS };

Matches literal_matches(const std::string& text, const std::string& lit) {
    Matches out;
    for (size_t pos = text.find(lit); pos != std::string::npos; pos = text.find(lit, pos + lit.size()))
        out.emplace_back(pos, pos + lit.size());
    return out;
}

// A literal or regex pattern, as Split/Replace use them.
struct Pattern {
    bool is_regex = false;
    std::string literal;
    std::unique_ptr<Regex> regex;

    Pattern(const Json& j, const std::string& file, const char* what) {
        auto [r, text] = json_pattern(j, file, what);
        is_regex = r;
        literal = text;
        if (r) regex = std::make_unique<Regex>(text, file + ": " + what);
        LOTA_CHECK(r || !text.empty(), "%s: %s: empty String pattern", file.c_str(), what);
    }
    Matches find(const std::string& text) const { return is_regex ? regex->find_all(text) : literal_matches(text, literal); }
};

// Pattern::find_matches: the whole text as (range, is_match) runs.
std::vector<std::pair<std::pair<size_t, size_t>, bool>> runs(const std::string& text, const Matches& m) {
    std::vector<std::pair<std::pair<size_t, size_t>, bool>> out;
    if (text.empty()) return {{{0, 0}, false}};
    size_t prev = 0;
    for (auto [s, e] : m) {
        if (prev != s) out.push_back({{prev, s}, false});
        out.push_back({{s, e}, true});
        prev = e;
    }
    if (prev != text.size()) out.push_back({{prev, text.size()}, false});
    return out;
}

// NormalizedString::split.
void split_piece(const Piece& p, const Matches& m, Behavior b, bool invert, std::vector<Piece>& out) {
    auto rs = runs(p.text, m);
    if (invert)
        for (auto& r : rs) r.second = !r.second;
    std::vector<std::pair<std::pair<size_t, size_t>, bool>> keep;  // (range, remove)
    bool prev_match = false;
    switch (b) {
        case Behavior::ISOLATED:
            for (auto& r : rs) keep.push_back({r.first, false});
            break;
        case Behavior::REMOVED:
            keep = rs;
            break;
        case Behavior::CONTIGUOUS:
            for (auto& r : rs) {
                if (r.second == prev_match && !keep.empty()) keep.back().first.second = r.first.second;
                else keep.push_back({r.first, false});
                prev_match = r.second;
            }
            break;
        case Behavior::MERGED_WITH_PREVIOUS:
            for (auto& r : rs) {
                if (r.second && !prev_match && !keep.empty()) keep.back().first.second = r.first.second;
                else keep.push_back({r.first, false});
                prev_match = r.second;
            }
            break;
        case Behavior::MERGED_WITH_NEXT:
            for (auto it = rs.rbegin(); it != rs.rend(); ++it) {
                if (it->second && !prev_match && !keep.empty()) keep.back().first.first = it->first.first;
                else keep.push_back({it->first, false});
                prev_match = it->second;
            }
            std::reverse(keep.begin(), keep.end());
            break;
    }
    for (auto& [range, remove] : keep) {
        if (remove || range.first == range.second) continue;
        out.push_back(Piece{p.text.substr(range.first, range.second - range.first), p.at_start && range.first == 0});
    }
}

class SequenceNormalizer : public Normalizer {
  public:
    std::vector<std::unique_ptr<Normalizer>> parts;
    std::string normalize(const std::string& s) const override {
        std::string out = s;
        for (const auto& p : parts) out = p->normalize(out);
        return out;
    }
};

class NfcNormalizer : public Normalizer {
    std::string normalize(const std::string& s) const override { return nfc(s); }
};

class NfdNormalizer : public Normalizer {
    std::string normalize(const std::string& s) const override { return nfd(s); }
};

class PrependNormalizer : public Normalizer {
  public:
    std::string prepend;
    std::string normalize(const std::string& s) const override { return s.empty() ? s : prepend + s; }
};

class ReplaceNormalizer : public Normalizer {
  public:
    ReplaceNormalizer(const Json& j, const std::string& file)
        : pattern(j.at("pattern"), file, "Replace normalizer"),
          content(json_string(j, "content", file, "Replace normalizer")) {}
    Pattern pattern;
    std::string content;
    std::string normalize(const std::string& s) const override {
        std::string out;
        size_t prev = 0;
        for (auto [b, e] : pattern.find(s)) {
            out.append(s, prev, b - prev);
            out += content;
            prev = e;
        }
        out.append(s, prev, std::string::npos);
        return out;
    }
};

class StripNormalizer : public Normalizer {
  public:
    bool left = true, right = true;
    std::string normalize(const std::string& s) const override {
        size_t b = 0, e = s.size();
        if (left) {
            for (size_t i = 0; i < s.size();) {
                if (!is_white_space(utf8_next(s, i))) break;
                b = i;
            }
        }
        if (right) {
            size_t last_non_ws = b;
            for (size_t i = b; i < s.size();)
                if (!is_white_space(utf8_next(s, i))) last_non_ws = i;
            e = last_non_ws;
        }
        return s.substr(b, e > b ? e - b : 0);
    }
};

class SequencePreTokenizer : public PreTokenizer {
  public:
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        for (const auto& p : parts) p->pre_tokenize(pieces);
    }
};

class SplitPreTokenizer : public PreTokenizer {
  public:
    SplitPreTokenizer(const Json& j, const std::string& file) : pattern(j.at("pattern"), file, "Split pre-tokenizer") {
        std::string b = json_string(j, "behavior", file, "Split pre-tokenizer");
        if (b == "Isolated") behavior = Behavior::ISOLATED;
        else if (b == "Removed") behavior = Behavior::REMOVED;
        else if (b == "MergedWithPrevious") behavior = Behavior::MERGED_WITH_PREVIOUS;
        else if (b == "MergedWithNext") behavior = Behavior::MERGED_WITH_NEXT;
        else if (b == "Contiguous") behavior = Behavior::CONTIGUOUS;
        else LOTA_FAIL("%s: Split pre-tokenizer: unsupported behavior '%s'", file.c_str(), b.c_str());
        invert = json_bool(j, "invert", false, file, "Split pre-tokenizer");
    }
    Pattern pattern;
    Behavior behavior = Behavior::ISOLATED;
    bool invert = false;
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<Piece> out;
        out.reserve(pieces.size());
        for (const Piece& p : pieces) split_piece(p, pattern.find(p.text), behavior, invert, out);
        pieces = std::move(out);
    }
};

class ByteLevelPreTokenizer : public PreTokenizer {
  public:
    ByteLevelPreTokenizer(const Json& j, const std::string& file)
        : add_prefix_space(json_bool(j, "add_prefix_space", true, file, "ByteLevel pre-tokenizer")),
          use_regex(json_bool(j, "use_regex", true, file, "ByteLevel pre-tokenizer")),
          regex(k_gpt2_pattern, "ByteLevel pre-tokenizer") {}
    bool add_prefix_space, use_regex;
    Regex regex;
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<Piece> out;
        out.reserve(pieces.size());
        for (Piece p : pieces) {
            if (add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, 1, ' ');
            if (use_regex) split_piece(p, regex.find_all(p.text), Behavior::ISOLATED, false, out);
            else if (!p.text.empty()) out.push_back(std::move(p));
        }
        for (Piece& p : out) {
            std::string mapped;
            mapped.reserve(p.text.size() * 2);
            for (unsigned char c : p.text) mapped += byte_level_char(c);
            p.text = std::move(mapped);
        }
        pieces = std::move(out);
    }
};

class MetaspacePreTokenizer : public PreTokenizer {
  public:
    enum class Scheme { ALWAYS, FIRST, NEVER };
    MetaspacePreTokenizer(const Json& j, const std::string& file) {
        replacement = json_string(j, "replacement", file, "Metaspace pre-tokenizer");
        size_t i = 0;
        LOTA_CHECK(!replacement.empty() && (utf8_next(replacement, i), i == replacement.size()),
                   "%s: Metaspace replacement must be one character", file.c_str());
        split = json_bool(j, "split", true, file, "Metaspace pre-tokenizer");
        if (j.contains("prepend_scheme")) {
            std::string s = json_string(j, "prepend_scheme", file, "Metaspace pre-tokenizer");
            if (s == "always") scheme = Scheme::ALWAYS;
            else if (s == "first") scheme = Scheme::FIRST;
            else if (s == "never") scheme = Scheme::NEVER;
            else LOTA_FAIL("%s: Metaspace: unsupported prepend_scheme '%s'", file.c_str(), s.c_str());
        } else {
            scheme = json_bool(j, "add_prefix_space", true, file, "Metaspace") ? Scheme::ALWAYS : Scheme::NEVER;
        }
    }
    std::string replacement;
    bool split = true;
    Scheme scheme = Scheme::ALWAYS;
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<Piece> out;
        for (Piece p : pieces) {
            p.text = replace_all(p.text, " ", replacement);
            bool starts = p.text.compare(0, replacement.size(), replacement) == 0;
            if (!starts && (scheme == Scheme::ALWAYS || (scheme == Scheme::FIRST && p.at_start)))
                p.text = replacement + p.text;
            if (split) split_piece(p, literal_matches(p.text, replacement), Behavior::MERGED_WITH_NEXT, false, out);
            else if (!p.text.empty()) out.push_back(std::move(p));
        }
        pieces = std::move(out);
    }
};

// Digits (char::is_numeric) and WhitespaceSplit (char::is_whitespace), as regex splits.
class RegexPreTokenizer : public PreTokenizer {
  public:
    RegexPreTokenizer(const char* pattern, Behavior b, const std::string& ctx) : regex(pattern, ctx), behavior(b) {}
    Regex regex;
    Behavior behavior;
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        std::vector<Piece> out;
        for (const Piece& p : pieces) split_piece(p, regex.find_all(p.text), behavior, false, out);
        pieces = std::move(out);
    }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& file, int depth) {
    if (j.is_null()) return nullptr;
    std::string type = json_type(j, file, "normalizer");
    if (type == "Sequence") {
        check_sequence_depth(depth, file, "normalizer");
        auto seq = std::make_unique<SequenceNormalizer>();
        LOTA_CHECK(j.contains("normalizers") && j["normalizers"].is_array(),
                   "%s: Sequence normalizer without a \"normalizers\" array", file.c_str());
        for (const auto& n : j["normalizers"])
            if (auto p = make_normalizer(n, file, depth + 1)) seq->parts.push_back(std::move(p));
        return seq;
    }
    if (type == "NFC") return std::make_unique<NfcNormalizer>();
    if (type == "NFD") return std::make_unique<NfdNormalizer>();
    if (type == "Prepend") {
        auto p = std::make_unique<PrependNormalizer>();
        p->prepend = json_string(j, "prepend", file, "Prepend normalizer");
        return p;
    }
    if (type == "Replace") return std::make_unique<ReplaceNormalizer>(j, file);
    if (type == "Strip") {
        auto s = std::make_unique<StripNormalizer>();
        s->left = json_bool(j, "strip_left", true, file, "Strip normalizer");
        s->right = json_bool(j, "strip_right", true, file, "Strip normalizer");
        return s;
    }
    LOTA_FAIL("%s: unsupported normalizer type '%s' (supported: Sequence, NFC, NFD, Prepend, Replace, Strip)",
              file.c_str(), type.c_str());
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& file, int depth) {
    if (j.is_null()) return nullptr;
    std::string type = json_type(j, file, "pre_tokenizer");
    if (type == "Sequence") {
        check_sequence_depth(depth, file, "pre_tokenizer");
        auto seq = std::make_unique<SequencePreTokenizer>();
        LOTA_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(),
                   "%s: Sequence pre-tokenizer without a \"pretokenizers\" array", file.c_str());
        for (const auto& n : j["pretokenizers"])
            if (auto p = make_pre_tokenizer(n, file, depth + 1)) seq->parts.push_back(std::move(p));
        return seq;
    }
    if (type == "Split") return std::make_unique<SplitPreTokenizer>(j, file);
    if (type == "ByteLevel") return std::make_unique<ByteLevelPreTokenizer>(j, file);
    if (type == "Metaspace") return std::make_unique<MetaspacePreTokenizer>(j, file);
    if (type == "Digits") {
        bool individual = json_bool(j, "individual_digits", false, file, "Digits pre-tokenizer");
        return std::make_unique<RegexPreTokenizer>(individual ? "\\p{N}" : "\\p{N}+", Behavior::ISOLATED,
                                                   "Digits pre-tokenizer");
    }
    if (type == "WhitespaceSplit")
        return std::make_unique<RegexPreTokenizer>("\\s", Behavior::REMOVED, "WhitespaceSplit pre-tokenizer");
    LOTA_FAIL("%s: unsupported pre_tokenizer type '%s' (supported: Sequence, Split, ByteLevel, Metaspace, "
              "Digits, WhitespaceSplit)",
              file.c_str(), type.c_str());
}

void check_sequence_depth(int depth, const std::string& file, const char* what) {
    LOTA_CHECK(depth < kMaxComponentDepth, "%s: %s Sequence nested deeper than %d levels", file.c_str(), what,
               kMaxComponentDepth);
}

std::string json_type(const Json& j, const std::string& file, const char* what) {
    LOTA_CHECK(j.is_object(), "%s: %s must be an object or null", file.c_str(), what);
    auto it = j.find("type");
    LOTA_CHECK(it != j.end() && it->is_string(), "%s: %s has no \"type\"", file.c_str(), what);
    return it->get<std::string>();
}

std::string json_string(const Json& j, const char* key, const std::string& file, const char* what) {
    auto it = j.find(key);
    LOTA_CHECK(it != j.end() && it->is_string(), "%s: %s: \"%s\" must be a string", file.c_str(), what, key);
    return it->get<std::string>();
}

bool json_bool(const Json& j, const char* key, bool dflt, const std::string& file, const char* what) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return dflt;
    LOTA_CHECK(it->is_boolean(), "%s: %s: \"%s\" must be a boolean", file.c_str(), what, key);
    return it->get<bool>();
}

std::pair<bool, std::string> json_pattern(const Json& j, const std::string& file, const char* what) {
    if (j.is_object() && j.size() == 1) {
        if (j.contains("String") && j["String"].is_string()) return {false, j["String"].get<std::string>()};
        if (j.contains("Regex") && j["Regex"].is_string()) return {true, j["Regex"].get<std::string>()};
    }
    LOTA_FAIL("%s: %s: pattern must be {\"String\": ...} or {\"Regex\": ...}", file.c_str(), what);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    std::string out;
    size_t prev = 0;
    for (auto [b, e] : literal_matches(s, from)) {
        out.append(s, prev, b - prev);
        out += to;
        prev = e;
    }
    out.append(s, prev, std::string::npos);
    return out;
}

}  // namespace lota::text::detail
