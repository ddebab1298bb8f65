// Jinja filters as jinja2 3.1 defines them, with transformers' tojson (json.dumps with
// ensure_ascii=False, indent, separators, sort_keys). Filters that return generators in jinja2
// (select/reject/selectattr/rejectattr/map/unique/items/reverse of a list) return iterator
// values, so `|length` and printing fail as they do there. An unknown filter is an error.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>

#include "text/jinja_eval.h"
#include "text/jinja_limits.h"
#include "text/jinja_strings.h"
#include "util/check.h"

namespace lota::text::jinja {
namespace {

// jinja2's make_attrgetter: dotted path, item lookup first, then attribute.
Value attr_path(const Value& item, const std::string& path, int line) {
    Value cur = item;
    size_t start = 0;
    while (true) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
        // strtoll, not atoll: an index beyond 64 bits saturates (matching no item) instead of being undefined.
        Value key = numeric ? Value::integer(std::strtoll(part.c_str(), nullptr, 10)) : Value::string(part);
        Value next = jinja_getitem(cur, key, line);
        if (next.is_undefined() && !numeric) next = jinja_getattr(cur, part, line);
        cur = next;
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
}

std::string attr_arg(const CallArgs& a, size_t pos, const char* what) {
    Value v = a.get(pos, "attribute");
    if (!v.is_string()) fail_at(a.line, std::string(what) + ": expected an attribute name");
    return v.as_string();
}

// select/reject/selectattr/rejectattr.
Value select(const Value& seq, CallArgs& a, bool by_attr, bool keep_if) {
    std::string attr = by_attr ? attr_arg(a, 0, "selectattr") : "";
    size_t test_pos = by_attr ? 1 : 0;
    Value test = a.get(test_pos, "");
    CallArgs targs;
    targs.line = a.line;
    for (size_t i = test_pos + 1; i < a.args.size(); ++i) targs.args.push_back(a.args[i]);
    std::vector<Value> out;
    for (const auto& item : value_iterate(seq, a.line)) {
        Value x = by_attr ? attr_path(item, attr, a.line) : item;
        bool ok;
        if (test.is_undefined()) {
            ok = x.truthy();
        } else {
            if (!test.is_string()) fail_at(a.line, "select: the test name must be a string");
            CallArgs t = targs;
            ok = jinja_test(test.as_string(), x, t);
        }
        if (ok == keep_if) out.push_back(item);
    }
    return Value::iterator(std::move(out));
}

Value map_filter(const Value& seq, CallArgs& a) {
    std::vector<Value> out;
    Value attribute;
    for (const auto& kv : a.kwargs)
        if (kv.first == "attribute") attribute = kv.second;
    if (!attribute.is_undefined()) {
        if (!attribute.is_string()) fail_at(a.line, "map: attribute must be a string");
        Value dflt;
        for (const auto& kv : a.kwargs)
            if (kv.first == "default") dflt = kv.second;
        for (const auto& item : value_iterate(seq, a.line)) {
            Value v = attr_path(item, attribute.as_string(), a.line);
            out.push_back(v.is_undefined() && !dflt.is_undefined() ? dflt : v);
        }
        return Value::iterator(std::move(out));
    }
    if (a.args.empty() || !a.args[0].is_string()) fail_at(a.line, "map: expected a filter name or attribute=");
    CallArgs fargs;
    fargs.line = a.line;
    fargs.args.assign(a.args.begin() + 1, a.args.end());
    fargs.kwargs = a.kwargs;
    for (const auto& item : value_iterate(seq, a.line)) {
        CallArgs f = fargs;
        out.push_back(jinja_filter(a.args[0].as_string(), item, f));
    }
    return Value::iterator(std::move(out));
}

// Sort key as jinja2's ignore_case: strings lowered unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
    return v.is_string() && !case_sensitive ? Value::string(py_lower(v.as_string())) : v;
}

Value sort_filter(const Value& seq, CallArgs& a) {
    a.check("sort", 3, {"reverse", "case_sensitive", "attribute"});
    bool reverse = a.get(0, "reverse", Value::boolean(false)).truthy();
    bool cs = a.get(1, "case_sensitive", Value::boolean(false)).truthy();
    Value attr = a.get(2, "attribute", Value::none());
    std::vector<Value> items = value_iterate(seq, a.line);
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& it : items)
        keyed.emplace_back(sort_key(attr.is_string() ? attr_path(it, attr.as_string(), a.line) : it, cs), it);
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return reverse ? value_less(y.first, x.first, a.line) : value_less(x.first, y.first, a.line);
    });
    std::vector<Value> out;
    for (auto& kv : keyed) out.push_back(kv.second);
    return Value::list(std::move(out));
}

Value minmax_filter(const Value& seq, CallArgs& a, bool want_max) {
    a.check(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"});
    bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
    Value attr = a.get(1, "attribute", Value::none());
    Value best, best_key;
    for (const auto& it : value_iterate(seq, a.line)) {
        Value k = sort_key(attr.is_string() ? attr_path(it, attr.as_string(), a.line) : it, cs);
        if (best.is_undefined() || (want_max ? value_less(best_key, k, a.line) : value_less(k, best_key, a.line))) {
            best = it;
            best_key = k;
        }
    }
    return best.is_undefined() ? Value::undefined("max/min of an empty sequence") : best;
}

Value tojson_filter(const Value& v, CallArgs& a) {
    a.check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
    bool ensure_ascii = a.get(0, "ensure_ascii", Value::boolean(false)).truthy();
    Value indent = a.get(1, "indent", Value::none());
    Value seps = a.get(2, "separators", Value::none());
    bool sort_keys = a.get(3, "sort_keys", Value::boolean(false)).truthy();
    std::string unit;
    const std::string* indent_ptr = nullptr;
    if (indent.is_integral()) {
        unit = std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(indent.as_int(), 64))), ' ');
        indent_ptr = &unit;
    } else if (indent.is_string()) {
        unit = indent.as_string();
        indent_ptr = &unit;
    } else if (!indent.is_none()) {
        fail_at(a.line, "tojson: indent must be an integer, a string or None");
    }
    std::string item_sep = indent_ptr ? "," : ", ", key_sep = ": ";
    if (!seps.is_none()) {
        std::vector<Value> s = value_iterate(seps, a.line);
        if (s.size() != 2 || !s[0].is_string() || !s[1].is_string())
            fail_at(a.line, "tojson: separators must be a pair of strings");
        item_sep = s[0].as_string();
        key_sep = s[1].as_string();
    }
    return Value::string(value_to_json(v, ensure_ascii, indent_ptr, item_sep, key_sep, sort_keys, a.line));
}

// jinja2's title filter: words start after runs of '-', whitespace, '(', '{', '[' or '<'.
std::string title_filter(const std::string& s) {
    std::u32string u = utf8_decode(s), out;
    bool at_start = true;
    for (char32_t c : u) {
        bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
        std::string one = utf8_encode(std::u32string(1, c));
        out += sep ? std::u32string(1, c) : utf8_decode(at_start ? py_upper(one) : py_lower(one));
        at_start = sep;
    }
    return utf8_encode(out);
}

std::string indent_filter(const std::string& text, CallArgs& a) {
    a.check("indent", 3, {"width", "first", "blank"});
    Value width = a.get(0, "width", Value::integer(4));
    if (!width.is_string() && !width.is_integral()) fail_at(a.line, "indent: width must be an integer or a string");
    if (width.is_integral()) check_text_size(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), a.line);
    std::string ind = width.is_string() ? width.as_string()
                                        : std::string(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), ' ');
    bool first = a.get(1, "first", Value::boolean(false)).truthy();
    bool blank = a.get(2, "blank", Value::boolean(false)).truthy();
    std::vector<std::string> lines;
    std::string s = text + "\n";
    for (size_t start = 0; start < s.size();) {
        size_t nl = s.find('\n', start);
        lines.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    std::string rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
        rv += "\n" + ((blank || !lines[i].empty()) ? ind + lines[i] : lines[i]);
        check_text_size(rv.size(), a.line);  // a long indent times many lines
    }
    return first ? ind + rv : rv;
}

Value int_filter(const Value& v, CallArgs& a) {
    Value dflt = a.get(0, "default", Value::integer(0));
    if (v.is_integral()) return Value::integer(v.as_int());
    if (v.kind() == Kind::FLOAT)
        return std::isfinite(v.as_double()) ? Value::integer(float_to_int(v.as_double(), a.line)) : dflt;
    if (!v.is_string()) return dflt;
    std::string s = py_strip(v.as_string(), nullptr, true, true);
    if (s.find_first_of("xXpP_") != std::string::npos) {  // strtod's hex floats; Python's digit separators
        if (s.find_first_of("xXpP") != std::string::npos) return dflt;
        fail_at(a.line, "unsupported: int filter on a string with '_' digit separators");
    }
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) return Value::integer(i);
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(f)) return Value::integer(float_to_int(f, a.line));
    return dflt;
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

Value jinja_filter(const std::string& name, const Value& v, CallArgs& a) {
    int line = a.line;
    auto str = [&] { return value_str(v, line); };
    if (name == "trim") {
        Value holder = a.get(0, "chars", Value::none());
        return Value::string(py_strip(str(), holder.is_string() ? &holder.as_string() : nullptr, true, true));
    }
    if (name == "length" || name == "count") return Value::integer(value_length(v, line));
    if (name == "tojson") return tojson_filter(v, a);
    if (name == "upper") return Value::string(py_upper(str()));
    if (name == "lower") return Value::string(py_lower(str()));
    if (name == "capitalize") return Value::string(py_capitalize(str()));
    if (name == "title") return Value::string(title_filter(str()));
    if (name == "string" || name == "safe") return Value::string(str());
    if (name == "escape" || name == "e") return Value::string(html_escape(str()));
    if (name == "default" || name == "d") {
        bool boolean = a.get(1, "boolean", Value::boolean(false)).truthy();
        if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value::string(""));
        return v;
    }
    if (name == "first" || name == "last") {
        if (name == "last" && v.is_list() && v.list_data().is_iterator) fail_at(line, "'generator' object is not reversible");
        std::vector<Value> items = value_iterate(v, line);
        if (items.empty()) return Value::undefined(std::string("no ") + name + " item");
        if (name == "first" && v.is_list() && v.list_data().is_iterator)  // the rest stays in the generator
            v.list_data().items.assign(items.begin() + 1, items.end());
        return name == "first" ? items.front() : items.back();
    }
    if (name == "join") {
        a.check("join", 2, {"d", "attribute"});
        Value sep = a.get(0, "d", Value::string(""));
        Value attr = a.get(1, "attribute", Value::none());
        std::string out;
        bool first = true;
        for (const auto& it : value_iterate(v, line)) {
            out += (first ? "" : value_str(sep, line)) +
                   value_str(attr.is_none() ? it : attr_path(it, value_str(attr, line), line), line);
            check_text_size(out.size(), line);
            first = false;
        }
        return Value::string(out);
    }
    if (name == "list") return Value::list(value_iterate(v, line));
    if (name == "items") {
        if (v.is_undefined()) return Value::iterator({});
        if (!v.is_dict()) fail_at(line, "items: expected a mapping, got " + v.type_name());
        std::vector<Value> out;
        for (const auto& kv : v.dict_data().items) out.push_back(Value::list({Value::string(kv.first), kv.second}, true));
        return Value::iterator(std::move(out));
    }
    if (name == "replace") {
        a.check("replace", 3, {"old", "new", "count"});
        Value count = a.get(2, "count", Value::none());
        return Value::string(py_replace(str(), value_str(a.get(0, "old"), line), value_str(a.get(1, "new"), line),
                                        count.is_integral() ? count.as_int() : -1, line));
    }
    if (name == "int") return int_filter(v, a);
    if (name == "float") {
        if (v.is_number()) return Value::number(v.as_double());
        std::string s = v.is_string() ? py_strip(v.as_string(), nullptr, true, true) : "";
        if (s.find_first_of("xXpP_(") != std::string::npos) s.clear();  // hex floats / nan(...) are not Python floats
        char* end = nullptr;
        double f = std::strtod(s.c_str(), &end);
        if (!s.empty() && *end == '\0') return Value::number(f);
        return a.get(0, "default", Value::number(0.0));
    }
    if (name == "select" || name == "reject") return select(v, a, false, name == "select");
    if (name == "selectattr" || name == "rejectattr") return select(v, a, true, name == "selectattr");
    if (name == "map") return map_filter(v, a);
    if (name == "unique") {
        a.check("unique", 2, {"case_sensitive", "attribute"});
        bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
        Value attr = a.get(1, "attribute", Value::none());
        std::vector<Value> out, seen;
        for (const auto& it : value_iterate(v, line)) {
            Value k = sort_key(attr.is_string() ? attr_path(it, attr.as_string(), line) : it, cs);
            bool dup = false;
            for (const auto& s : seen) dup = dup || value_equal(s, k);
            if (!dup) seen.push_back(k), out.push_back(it);
        }
        return Value::iterator(std::move(out));
    }
    if (name == "reverse") {
        const Value minus_one = Value::integer(-1);
        if (v.is_string()) return jinja_slice(v, nullptr, nullptr, &minus_one, line);
        std::vector<Value> items = value_iterate(v, line);
        std::reverse(items.begin(), items.end());
        return v.is_list() && v.list_data().is_iterator ? Value::list(std::move(items)) : Value::iterator(std::move(items));
    }
    if (name == "sort") return sort_filter(v, a);
    if (name == "max" || name == "min") return minmax_filter(v, a, name == "max");
    if (name == "sum") {
        Value attr = a.get(0, "attribute", Value::none());
        Value total = a.get(1, "start", Value::integer(0));
        for (const auto& it : value_iterate(v, line))
            total = jinja_binary("+", total, attr.is_string() ? attr_path(it, attr.as_string(), line) : it, line);
        return total;
    }
    if (name == "abs") {
        if (!v.is_number()) fail_at(line, "bad operand type for abs(): '" + v.type_name() + "'");
        if (v.kind() == Kind::FLOAT) return Value::number(std::fabs(v.as_double()));
        if (v.as_int() == INT64_MIN) fail_at(line, "unsupported: integer result does not fit in 64 bits");
        return Value::integer(std::llabs(v.as_int()));
    }
    if (name == "indent") return Value::string(indent_filter(str(), a));
    if (name == "format") {
        Value args = Value::list(a.args, true);
        if (!a.kwargs.empty()) fail_at(line, "unsupported: format filter with keyword arguments");
        return jinja_binary("%", Value::string(str()), args, line);
    }
    if (name == "wordcount") {  // jinja2 counts runs of \w
        int64_t n = 0;
        bool in_word = false;
        for (char32_t c : utf8_decode(str())) {
            bool w = c < 0x80 ? (std::isalnum(static_cast<int>(c)) || c == '_') : !py_isspace(c);
            n += w && !in_word;
            in_word = w;
        }
        return Value::integer(n);
    }
    fail_at(line, (jinja_filter_known(name) ? "unsupported filter '" : "unknown filter '") + name + "'");
}

bool jinja_filter_known(const std::string& name) {
    static const std::set<std::string> names = {
        "abs",    "attr",    "batch",  "capitalize", "center",  "count",     "d",          "default", "dictsort",
        "e",      "escape",  "filesizeformat",       "first",   "float",     "forceescape", "format", "groupby",
        "indent", "int",     "items",  "join",       "last",    "length",    "list",       "lower",   "map",
        "max",    "min",     "pprint", "random",     "reject",  "rejectattr", "replace",   "reverse", "round",
        "safe",   "select",  "selectattr", "slice",  "sort",    "string",    "striptags",  "sum",     "title",
        "tojson", "trim",    "truncate", "unique",   "upper",   "urlencode", "urlize",     "wordcount", "wordwrap",
        "xmlattr"};
    return names.count(name) > 0;
}

}  // namespace lota::text::jinja
