// Jinja lexer for chat templates: splits a template into text and tag tokens the way jinja2's
// lexer does with trim_blocks=True, lstrip_blocks=True and keep_trailing_newline=False
// (whitespace control `{%-`, `-%}`, `{%+`, `+%}`, `{{-`, `-}}`, comments, `{% raw %}`).
// It does not support line statements or custom delimiters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lota::text::jinja {

enum class TokType { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INT, FLOAT, OP, END };

struct Token {
    TokType type = TokType::END;
    std::string text;  ///< text data, name, operator or decoded string literal
    int line = 1;
    int64_t i = 0;
    double f = 0.0;
};

/// Tokenizes `source`; throws lota::Error ("chat template: ... at line N") on lexical errors.
std::vector<Token> jinja_lex(const std::string& source);

}  // namespace lota::text::jinja
