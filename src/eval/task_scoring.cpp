// Answer rules of the generation tasks (see task_scoring.h).
#include "eval/task_scoring.h"

#include <algorithm>

#include "text/jinja_strings.h"

namespace lota::eval {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "attr[value]" -> (attr, value), both stripped; nullopt otherwise.
std::optional<std::pair<std::string, std::string>> viggo_attribute(const std::string& item) {
    const size_t open = item.find('[');
    if (open == std::string::npos || item.empty() || item.back() != ']') return std::nullopt;
    std::string name = text_strip(item.substr(0, open));
    if (name.empty()) return std::nullopt;
    return std::make_pair(std::move(name), text_strip(item.substr(open + 1, item.size() - open - 2)));
}

}  // namespace

std::string text_strip(const std::string& text) { return text::jinja::py_strip(text, nullptr, true, true); }

std::optional<std::string> gsm8k_answer(const std::string& text) {
    const size_t at = text.rfind("####");
    if (at == std::string::npos) return std::nullopt;
    const std::string tail = text_strip(text.substr(at + 4));
    std::string out;
    for (size_t i = 0; i < tail.size(); ++i) {
        // a thousands separator sits between two digits
        const bool separator = tail[i] == ',' && i > 0 && i + 1 < tail.size() && is_digit(tail[i - 1]) &&
                               is_digit(tail[i + 1]);
        if (!separator) out += tail[i];
    }
    return out;
}

bool gsm8k_correct(const std::string& prediction, const std::string& reference) {
    const auto p = gsm8k_answer(prediction), r = gsm8k_answer(reference);
    return p && r && *p == *r;
}

bool sql_correct(const std::string& prediction, const std::string& reference) {
    return text_strip(prediction) == text_strip(reference);
}

std::optional<ViggoMr> viggo_parse(const std::string& text) {
    const std::string s = text_strip(text);
    const size_t open = s.find('(');
    if (open == std::string::npos || s.back() != ')') return std::nullopt;
    ViggoMr mr;
    mr.function = text_strip(s.substr(0, open));
    if (mr.function.empty()) return std::nullopt;
    const std::string body = s.substr(open + 1, s.size() - open - 2);
    if (text_strip(body).empty()) return mr;  // "request()" style: no attributes
    int depth = 0;  // inside [...]: commas belong to the value
    std::string item;
    for (size_t i = 0; i <= body.size(); ++i) {
        const char c = i < body.size() ? body[i] : ',';
        if (c == ',' && depth == 0) {
            auto a = viggo_attribute(text_strip(item));
            if (!a) return std::nullopt;
            mr.attributes.push_back(std::move(*a));
            item.clear();
            continue;
        }
        if (c == '[') ++depth;
        if (c == ']' && --depth < 0) return std::nullopt;
        item += c;
    }
    if (depth != 0) return std::nullopt;
    return mr;
}

bool viggo_correct(const std::string& prediction, const std::string& reference) {
    auto p = viggo_parse(prediction), r = viggo_parse(reference);
    if (!p || !r || p->function != r->function) return false;
    std::sort(p->attributes.begin(), p->attributes.end());
    std::sort(r->attributes.begin(), r->attributes.end());
    return p->attributes == r->attributes;
}

}  // namespace lota::eval
