// PCRE2 wrapper for the tokenizer's pre-tokenization regexes (see unicode_regex.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/unicode_regex.h"

#include <pcre2.h>

#include "util/check.h"

namespace lota::text {
namespace {

// Unicode White_Space, as a character-class body.
const char* const k_white_space_set =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"
    "\\x{3000}";

}  // namespace

struct Regex::Code {
    pcre2_code* code = nullptr;
    ~Code() {
        if (code) pcre2_code_free(code);
    }
};

std::string regex_translate_whitespace(const std::string& pattern) {
    std::string out;
    out.reserve(pattern.size() + 64);
    bool in_class = false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < pattern.size()) {
            char e = pattern[i + 1];
            ++i;
            if (e == 's') {
                out += in_class ? std::string(k_white_space_set) : "[" + std::string(k_white_space_set) + "]";
            } else if (e == 'S' && !in_class) {
                out += "[^" + std::string(k_white_space_set) + "]";
            } else {
                out += '\\';
                out += e;
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal member.
            if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
            if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
            continue;
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

Regex::Regex(const std::string& pattern, const std::string& context)
    : pattern_(pattern), code_(std::make_shared<Code>()) {
    std::string translated = regex_translate_whitespace(pattern);
    int err = 0;
    PCRE2_SIZE off = 0;
    code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!code_->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        LOTA_FAIL("%s: cannot compile regex '%s' at offset %zu: %s", context.c_str(), pattern.c_str(),
                  static_cast<size_t>(off), reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& text) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
    LOTA_CHECK(md != nullptr, "regex: out of memory");
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    bool have_last = false;
    size_t last_end = 0;
    while (pos <= text.size()) {
        int rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            pcre2_match_data_free(md);
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof(msg));
            LOTA_FAIL("regex '%s': match failed: %s", pattern_.c_str(), reinterpret_cast<const char*>(msg));
        }
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (s == e && have_last && last_end == e) {
            // Oniguruma's iterator: no empty match right after the previous one; step one character.
            if (pos >= text.size()) break;
            pos += 1;
            while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
            continue;
        }
        out.emplace_back(s, e);
        have_last = true;
        last_end = e;
        if (e == s) {
            // Advance past an empty match by one character.
            if (e >= text.size()) break;
            pos = e + 1;
            while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
        } else {
            pos = e;
        }
    }
    pcre2_match_data_free(md);
    return out;
}

bool Regex::search(const std::string& text) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
    LOTA_CHECK(md != nullptr, "regex: out of memory");
    int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                         PCRE2_NO_UTF_CHECK, md, nullptr);
    pcre2_match_data_free(md);
    return rc >= 0;
}

}  // namespace lota::text
