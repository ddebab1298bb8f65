// Jinja lexer (see jinja_lexer.h). Mirrors jinja2's lexer rules: the end of a tag is only
// recognised outside brackets; lstrip_blocks removes the blanks between a line start and a
// `{%`/`{#` tag; trim_blocks removes the one newline after `%}`/`#}`.
#include "text/jinja_lexer.h"

#include <cctype>
#include <cstdlib>

#include "text/jinja_strings.h"
#include "text/jinja_value.h"

namespace lota::text::jinja {
namespace {

bool blank_only(const std::string& s) { return py_strip(s, nullptr, true, true).empty(); }

class Lexer {
  public:
    explicit Lexer(std::string src) : src_(std::move(src)) {}

    std::vector<Token> run() {
        size_t pos = 0;
        while (pos <= src_.size()) {
            size_t start = find_tag(pos);
            if (start == std::string::npos) {
                emit_text(src_.substr(pos), pos);
                break;
            }
            char kind = src_[start + 1];
            char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
            std::string text = src_.substr(pos, start - pos);
            if (sign == '-') {
                text = py_strip(text, nullptr, false, true);
            } else if (kind != '{' && sign != '+') {
                text = lstrip_block(text, pos);
            }
            emit_text(text, pos);
            size_t body = start + 2 + ((sign == '-' || (sign == '+' && kind != '{')) ? 1 : 0);
            if (kind == '#') {
                pos = lex_comment(start, body);
            } else if (kind == '%' && is_raw(body)) {
                pos = lex_raw(start, body);
            } else {
                pos = lex_tag(kind, start, body);
            }
        }
        Token end;
        end.type = TokType::END;
        end.line = line_at(src_.size());
        tokens_.push_back(end);
        return std::move(tokens_);
    }

  private:
    std::string src_;
    std::vector<Token> tokens_;
    size_t line_pos_ = 0;
    int line_ = 1;

    int line_at(size_t p) {
        if (p < line_pos_) {
            line_pos_ = 0;
            line_ = 1;
        }
        for (; line_pos_ < p && line_pos_ < src_.size(); ++line_pos_)
            if (src_[line_pos_] == '\n') ++line_;
        return line_;
    }

    size_t find_tag(size_t pos) const {
        for (size_t p = src_.find('{', pos); p != std::string::npos && p + 1 < src_.size(); p = src_.find('{', p + 1)) {
            char c = src_[p + 1];
            if (c == '{' || c == '%' || c == '#') return p;
        }
        return std::string::npos;
    }

    // lstrip_blocks: drop blanks between the start of the line and the tag.
    std::string lstrip_block(const std::string& text, size_t text_pos) const {
        size_t nl = text.rfind('\n');
        size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        bool line_start = l_pos > 0 || text_pos == 0 || src_[text_pos - 1] == '\n';
        if (line_start && blank_only(text.substr(l_pos))) return text.substr(0, l_pos);
        return text;
    }

    void emit_text(const std::string& text, size_t pos) {
        if (text.empty()) return;
        Token t;
        t.type = TokType::TEXT;
        t.text = text;
        t.line = line_at(pos);
        tokens_.push_back(std::move(t));
    }

    void push(TokType type, std::string text, size_t pos) {
        Token t;
        t.type = type;
        t.text = std::move(text);
        t.line = line_at(pos);
        tokens_.push_back(std::move(t));
    }

    // After `%}`/`#}`: `-` skips all whitespace, `+` nothing, otherwise one newline (trim_blocks).
    size_t after_end(size_t p, char sign, bool trim) const {
        if (sign == '-') {
            while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
        } else if (sign != '+' && trim && p < src_.size() && src_[p] == '\n') {
            ++p;
        }
        return p;
    }

    size_t lex_comment(size_t start, size_t body) {
        size_t e = src_.find("#}", body);
        if (e == std::string::npos) fail_at(line_at(start), "unterminated comment");
        char sign = (e > body && (src_[e - 1] == '-' || src_[e - 1] == '+')) ? src_[e - 1] : '\0';
        return after_end(e + 2, sign, true);
    }

    // `{% raw %}` (pattern: optional sign, blanks, "raw", blanks, optional '-', "%}").
    bool match_word_tag(size_t p, const char* word, size_t* end, char* sign) const {
        while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
        size_t n = std::string(word).size();
        if (src_.compare(p, n, word) != 0) return false;
        p += n;
        while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
        *sign = '\0';
        if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) *sign = src_[p++];
        if (src_.compare(p, 2, "%}") != 0) return false;
        *end = p + 2;
        return true;
    }

    bool is_raw(size_t body) const {
        size_t end;
        char sign;
        return match_word_tag(body, "raw", &end, &sign) && sign != '+';
    }

    size_t lex_raw(size_t start, size_t body) {
        size_t end;
        char sign;
        match_word_tag(body, "raw", &end, &sign);
        size_t data_pos = after_end(end, sign, false);
        for (size_t p = src_.find("{%", data_pos); p != std::string::npos; p = src_.find("{%", p + 1)) {
            char tsign = p + 2 < src_.size() ? src_[p + 2] : '\0';
            size_t b = p + 2 + ((tsign == '-' || tsign == '+') ? 1 : 0);
            size_t e;
            char esign;
            if (!match_word_tag(b, "endraw", &e, &esign)) continue;
            std::string text = src_.substr(data_pos, p - data_pos);
            if (tsign == '-') {
                text = py_strip(text, nullptr, false, true);
            } else if (tsign != '+') {
                text = lstrip_block(text, data_pos);
            }
            emit_text(text, data_pos);
            return after_end(e, esign, true);
        }
        fail_at(line_at(start), "missing {% endraw %}");
    }

    size_t lex_tag(char kind, size_t start, size_t p) {
        push(kind == '{' ? TokType::VAR_BEGIN : TokType::BLOCK_BEGIN, "", start);
        std::string brackets;
        while (true) {
            if (brackets.empty()) {
                size_t end = match_end(kind, p);
                if (end != std::string::npos) {
                    push(kind == '{' ? TokType::VAR_END : TokType::BLOCK_END, "", p);
                    return end;
                }
            }
            if (p >= src_.size()) fail_at(line_at(start), "unexpected end of template inside a tag");
            unsigned char c = static_cast<unsigned char>(src_[p]);
            if (std::isspace(c)) {
                ++p;
            } else if (std::isalpha(c) || c == '_') {
                size_t b = p;
                while (p < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
                push(TokType::NAME, src_.substr(b, p - b), b);
            } else if (std::isdigit(c)) {
                p = lex_number(p);
            } else if (c == '\'' || c == '"') {
                p = lex_string(p);
            } else {
                p = lex_operator(p, brackets);
            }
        }
    }

    size_t match_end(char kind, size_t p) const {
        const char* close = kind == '{' ? "}}" : "%}";
        if (p < src_.size() && src_[p] == '-' && src_.compare(p + 1, 2, close) == 0) return after_end(p + 3, '-', true);
        if (kind == '%' && p < src_.size() && src_[p] == '+' && src_.compare(p + 1, 2, close) == 0) return p + 3;
        if (src_.compare(p, 2, close) == 0) return after_end(p + 2, '\0', kind == '%');
        return std::string::npos;
    }

    size_t lex_number(size_t p) {
        size_t b = p;
        auto digits = [&] {
            while (p < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
        };
        digits();
        bool is_float = false;
        if (p + 1 < src_.size() && src_[p] == '.' && std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
            ++p;
            digits();
            is_float = true;
        }
        if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
            size_t q = p + 1;
            if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
            if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
                p = q;
                digits();
                is_float = true;
            }
        }
        std::string text;
        for (size_t i = b; i < p; ++i)
            if (src_[i] != '_') text += src_[i];
        if (p < src_.size() && std::isalpha(static_cast<unsigned char>(src_[p])))
            fail_at(line_at(b), "unsupported number literal '" + src_.substr(b, p - b + 1) + "'");
        Token t;
        t.type = is_float ? TokType::FLOAT : TokType::INT;
        t.text = text;
        t.line = line_at(b);
        errno = 0;
        if (is_float) {
            t.f = std::strtod(text.c_str(), nullptr);
        } else {
            t.i = std::strtoll(text.c_str(), nullptr, 10);
            if (errno == ERANGE) fail_at(t.line, "integer literal " + text + " is too large");
        }
        tokens_.push_back(std::move(t));
        return p;
    }

    size_t lex_string(size_t p) {
        char q = src_[p];
        size_t b = p++;
        std::u32string out;
        while (true) {
            if (p >= src_.size()) fail_at(line_at(b), "unterminated string literal");
            char c = src_[p];
            if (c == q) break;
            if (c != '\\' || p + 1 >= src_.size()) {
                size_t n = 1;  // copy one UTF-8 sequence
                while (p + n < src_.size() && (static_cast<unsigned char>(src_[p + n]) & 0xC0) == 0x80) ++n;
                out += utf8_decode(src_.substr(p, n));
                p += n;
                continue;
            }
            p = lex_escape(p + 1, out);
        }
        push(TokType::STRING, utf8_encode(out), b);
        tokens_.back().line = line_at(b);
        return p + 1;
    }

    // Python "unicode-escape" rules for the character after a backslash at `p`.
    size_t lex_escape(size_t p, std::u32string& out) {
        char e = src_[p];
        static const std::string simple = "nrtabfv\\'\"\n";
        static const char32_t mapped[] = {'\n', '\r', '\t', '\a', '\b', '\f', '\v', '\\', '\'', '"', 0};
        size_t k = simple.find(e);
        if (k != std::string::npos) {
            if (e != '\n') out.push_back(mapped[k]);  // backslash-newline is a line continuation
            return p + 1;
        }
        int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (hex) {
            if (p + 1 + static_cast<size_t>(hex) > src_.size()) fail_at(line_at(p), "truncated escape in string");
            std::string h = src_.substr(p + 1, static_cast<size_t>(hex));
            for (char ch : h)
                if (!std::isxdigit(static_cast<unsigned char>(ch))) fail_at(line_at(p), "invalid escape in string");
            out.push_back(static_cast<char32_t>(std::strtoul(h.c_str(), nullptr, 16)));
            return p + 1 + static_cast<size_t>(hex);
        }
        if (e >= '0' && e <= '7') {
            char32_t v = 0;
            size_t n = 0;
            while (n < 3 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7') v = v * 8 + (src_[p++] - '0'), ++n;
            out.push_back(v);
            return p;
        }
        out.push_back('\\');  // unknown escapes stay as written
        return p;
    }

    size_t lex_operator(size_t p, std::string& brackets) {
        static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
        for (const char* op : two)
            if (src_.compare(p, 2, op) == 0) {
                push(TokType::OP, op, p);
                return p + 2;
            }
        char c = src_[p];
        if (std::string("+-*/%~<>=()[]{},.:|").find(c) == std::string::npos)
            fail_at(line_at(p), std::string("unexpected character '") + c + "'");
        if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
        if (c == ')' || c == ']' || c == '}') {
            char open = c == ')' ? '(' : c == ']' ? '[' : '{';
            if (brackets.empty() || brackets.back() != open) fail_at(line_at(p), std::string("unexpected '") + c + "'");
            brackets.pop_back();
        }
        push(TokType::OP, std::string(1, c), p);
        return p + 1;
    }
};

}  // namespace

std::vector<Token> jinja_lex(const std::string& source) {
    std::string src;  // newlines normalised to \n, one trailing newline dropped (keep_trailing_newline=False)
    src.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            src += '\n';
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        } else {
            src += source[i];
        }
    }
    if (!src.empty() && src.back() == '\n') src.pop_back();
    return Lexer(std::move(src)).run();
}

}  // namespace lota::text::jinja
