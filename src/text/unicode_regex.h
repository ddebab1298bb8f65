// PCRE2 regex (UTF + UCP, JIT when available) with the match iteration HF tokenizers gets from
// Oniguruma: leftmost matches, an empty match right after the previous match is skipped. `\s` and
// `\S` are rewritten to the Unicode White_Space set, which is what Oniguruma means by them (PCRE2's
// \s also matches U+180E).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lota::text {

class Regex {
  public:
    /// Compiles `pattern`; throws lota::Error mentioning `context` and the PCRE2 message on failure.
    Regex(const std::string& pattern, const std::string& context);
    /// Non-overlapping matches [start, end) in byte offsets, in order.
    std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;
    /// Whether the pattern matches somewhere in text.
    bool search(const std::string& text) const;
    const std::string& pattern() const { return pattern_; }

  private:
    struct Code;
    std::string pattern_;
    std::shared_ptr<Code> code_;
};

/// Rewrites `\s` / `\S` (outside and, for `\s`, inside character classes) to White_Space sets.
std::string regex_translate_whitespace(const std::string& pattern);

}  // namespace lota::text
