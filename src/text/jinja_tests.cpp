// Jinja tests (`x is name(args)`) as jinja2 defines them, and str.format for templates.
// Python nuances kept: bool is a number but not an integer, Undefined is iterable and a sequence,
// generators are iterable but not sequences.
#include <cstdlib>
#include <set>

#include "text/jinja_eval.h"
#include "text/jinja_strings.h"
#include "util/check.h"

namespace lota::text::jinja {

bool jinja_test(const std::string& name, const Value& v, CallArgs& a) {
    Kind k = v.kind();
    bool iterator = k == Kind::LIST && v.list_data().is_iterator;
    if (name == "defined") return k != Kind::UNDEFINED;
    if (name == "undefined") return k == Kind::UNDEFINED;
    if (name == "none") return k == Kind::NONE;
    if (name == "boolean") return k == Kind::BOOL;
    if (name == "true") return k == Kind::BOOL && v.as_bool();
    if (name == "false") return k == Kind::BOOL && !v.as_bool();
    if (name == "integer") return k == Kind::INT;
    if (name == "float") return k == Kind::FLOAT;
    if (name == "number") return v.is_number();
    if (name == "string") return k == Kind::STRING;
    if (name == "mapping") return k == Kind::DICT;
    if (name == "iterable") return k == Kind::UNDEFINED || k == Kind::STRING || k == Kind::LIST || k == Kind::DICT;
    if (name == "sequence")
        return k == Kind::UNDEFINED || k == Kind::STRING || (k == Kind::LIST && !iterator) || k == Kind::DICT;
    if (name == "callable") return k == Kind::CALLABLE;
    if (name == "escaped") return false;
    if (name == "lower" || name == "upper") {
        std::string s = value_str(v, a.line);
        bool has_cased = py_upper(s) != py_lower(s);
        return has_cased && (name == "lower" ? py_lower(s) == s : py_upper(s) == s);
    }
    if (name == "odd" || name == "even" || name == "divisibleby") {
        Value by = name == "divisibleby" ? a.get(0, "num") : Value::integer(2);
        Value r = jinja_binary("%", v, by, a.line);
        bool zero = r.kind() == Kind::FLOAT ? r.as_double() == 0.0 : r.as_int() == 0;
        return name == "odd" ? !zero : zero;
    }
    static const char* cmp[][2] = {{"eq", "=="}, {"equalto", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="},
                                   {"lt", "<"},  {"lessthan", "<"},  {"<", "<"},   {"le", "<="}, {"<=", "<="},
                                   {"gt", ">"},  {"greaterthan", ">"}, {">", ">"}, {"ge", ">="}, {">=", ">="}};
    for (const auto& c : cmp)
        if (name == c[0]) return jinja_compare(c[1], v, a.get(0, "other"), a.line);
    if (name == "in") return jinja_contains(a.get(0, "seq"), v, a.line);
    if (name == "sameas") {
        Value o = a.get(0, "other");
        if (v.kind() == Kind::NONE || v.kind() == Kind::BOOL || o.kind() == Kind::NONE || o.kind() == Kind::BOOL)
            return v.kind() == o.kind() && value_equal(v, o);
        return v.same_object(o) && (v.is_list() || v.is_dict() || v.kind() == Kind::NAMESPACE);
    }
    fail_at(a.line, (jinja_test_known(name) ? "unsupported test '" : "unknown test '") + name + "'");
}

bool jinja_test_known(const std::string& name) {
    static const std::set<std::string> names = {
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
        "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
        "upper", "==", "!=", "<", "<=", ">", ">="};
    return names.count(name) > 0;
}

// str.format: {} {0} {name} {{ }} and !s/!r conversions; format specs are not supported.
std::string format_method(const std::string& fmt, const CallArgs& a) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
            else fail_at(a.line, "format: single '}' encountered in format string");
            out += '}';
            continue;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        size_t close = fmt.find('}', i);
        if (close == std::string::npos) fail_at(a.line, "format: single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, close - i - 1);
        i = close;
        char conv = 's';
        size_t bang = field.find('!');
        if (field.find(':') != std::string::npos) fail_at(a.line, "unsupported: format spec in str.format");
        if (bang != std::string::npos) {
            if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r'))
                fail_at(a.line, "unsupported: conversion in str.format");
            conv = field[bang + 1];
            field = field.substr(0, bang);
        }
        Value v;
        if (field.empty()) {
            if (auto_index >= a.args.size()) fail_at(a.line, "format: replacement index out of range");
            v = a.args[auto_index++];
        } else if (field.find_first_not_of("0123456789") == std::string::npos) {
            // strtoull saturates where std::stoul would throw std::out_of_range.
            const unsigned long long idx = std::strtoull(field.c_str(), nullptr, 10);
            if (idx >= a.args.size()) fail_at(a.line, "format: replacement index out of range");
            v = a.args[idx];
        } else {
            bool found = false;
            for (const auto& kv : a.kwargs)
                if (kv.first == field) v = kv.second, found = true;
            if (!found) fail_at(a.line, "format: missing keyword argument '" + field + "'");
        }
        out += conv == 'r' ? value_repr(v, a.line) : value_str(v, a.line);
    }
    return out;
}

}  // namespace lota::text::jinja
