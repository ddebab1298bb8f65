// Attribute and item access, Python methods of str/dict/list, and the globals transformers
// gives chat templates (raise_exception, strftime_now, namespace, dict) plus jinja2's range.
// Mutating methods (append, update, pop...) are refused, as jinja2's ImmutableSandboxedEnvironment does.
#include <ctime>
#include <set>

#include "text/jinja_eval.h"
#include "text/jinja_limits.h"
#include "text/jinja_strings.h"
#include "util/check.h"

namespace lota::text::jinja {

std::string format_method(const std::string& fmt, const CallArgs& a);  // jinja_filters.cpp

namespace {

const std::string& str_arg(const CallArgs& a, size_t pos, const char* what) {
    if (pos >= a.args.size() || !a.args[pos].is_string())
        fail_at(a.line, std::string(what) + ": expected a string argument");
    return a.args[pos].as_string();
}

// Optional string/None argument (`chars`, `sep`): nullptr when None or absent.
const std::string* opt_str(const CallArgs& a, size_t pos, const std::string& name, Value& holder, const char* what) {
    holder = a.get(pos, name, Value::none());
    if (holder.is_none()) return nullptr;
    if (!holder.is_string()) fail_at(a.line, std::string(what) + ": expected a string or None");
    return &holder.as_string();
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, int line) {
    std::vector<Value> options;
    if (affix.is_list() && affix.list_data().is_tuple) {
        options = affix.list_data().items;
    } else {
        options.push_back(affix);
    }
    for (const auto& o : options) {
        if (!o.is_string()) fail_at(line, "startswith/endswith: expected a string or a tuple of strings");
        const std::string& x = o.as_string();
        if (x.size() <= s.size() && s.compare(prefix ? 0 : s.size() - x.size(), x.size(), x) == 0) return true;
    }
    return false;
}

Value split_method(const std::string& s, CallArgs& a, bool from_right, const char* what) {
    a.check(what, 2, {"sep", "maxsplit"});
    Value holder;
    const std::string* sep = opt_str(a, 0, "sep", holder, what);
    if (sep && sep->empty()) fail_at(a.line, "empty separator");
    Value maxsplit = a.get(1, "maxsplit", Value::integer(-1));
    if (!maxsplit.is_integral()) fail_at(a.line, std::string(what) + ": maxsplit must be an integer");
    // At most kMaxListItems splits: one part more than the limit means there were too many.
    int64_t max_splits = static_cast<int64_t>(kMaxListItems);
    if (maxsplit.as_int() >= 0 && maxsplit.as_int() < max_splits) max_splits = maxsplit.as_int();
    std::vector<std::string> parts = py_split(s, sep, max_splits, from_right);
    check_list_size(parts.size(), a.line);
    std::vector<Value> out;
    for (auto& part : parts) out.push_back(Value::string(std::move(part)));
    return Value::list(std::move(out));
}

bool all_chars(const std::string& s, int (*pred)(int)) {
    if (s.empty()) return false;
    for (char32_t c : utf8_decode(s))
        if (c > 0x7F || !pred(static_cast<int>(c))) return false;
    return true;
}

Value call_str_method(const std::string& s, const std::string& name, CallArgs& a) {
    Value holder;
    if (name == "startswith" || name == "endswith") {
        a.check(name.c_str(), 3, {});
        if (a.args.empty()) fail_at(a.line, name + " needs an argument");
        if (a.args.size() == 1) return Value::boolean(affix_match(s, a.args[0], name == "startswith", a.line));
        Value sub = jinja_slice(Value::string(s), &a.args[1], a.args.size() > 2 ? &a.args[2] : nullptr, nullptr, a.line);
        return Value::boolean(affix_match(sub.as_string(), a.args[0], name == "startswith", a.line));
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        a.check(name.c_str(), 1, {"chars"});
        const std::string* chars = opt_str(a, 0, "chars", holder, name.c_str());
        return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") return split_method(s, a, name == "rsplit", name.c_str());
    if (name == "upper") return Value::string(py_upper(s));
    if (name == "lower") return Value::string(py_lower(s));
    if (name == "title") return Value::string(py_title(s));
    if (name == "capitalize") return Value::string(py_capitalize(s));
    if (name == "replace") {
        a.check("replace", 3, {"count"});
        Value count = a.get(2, "count", Value::integer(-1));
        if (!count.is_integral()) fail_at(a.line, "replace: count must be an integer");
        return Value::string(
            py_replace(s, str_arg(a, 0, "replace"), str_arg(a, 1, "replace"), count.as_int(), a.line));
    }
    if (name == "format") return Value::string(format_method(s, a));
    if (name == "join") {
        std::string out;
        bool first = true;
        for (const auto& v : value_iterate(a.get(0, "iterable"), a.line)) {
            if (!v.is_string()) fail_at(a.line, "join: sequence item is " + v.type_name() + ", expected str");
            out += (first ? "" : s) + v.as_string();
            check_text_size(out.size(), a.line);
            first = false;
        }
        return Value::string(out);
    }
    if (name == "find" || name == "rfind" || name == "count" || name == "index" || name == "rindex") {
        a.check(name.c_str(), 1, {});
        const std::string& sub = str_arg(a, 0, name.c_str());
        if (name == "count") {
            if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_decode(s).size()) + 1);
            int64_t n = 0;
            for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
            return Value::integer(n);
        }
        size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
        if (p == std::string::npos && (name == "index" || name == "rindex")) fail_at(a.line, "substring not found");
        if (p == std::string::npos) return Value::integer(-1);
        return Value::integer(static_cast<int64_t>(utf8_decode(s.substr(0, p)).size()));
    }
    if (name == "splitlines") {
        std::vector<Value> out;
        std::string norm = py_replace(py_replace(s, "\r\n", "\n", -1, a.line), "\r", "\n", -1, a.line);
        size_t start = 0;
        while (start < norm.size()) {
            size_t nl = norm.find('\n', start);
            if (nl == std::string::npos) nl = norm.size();
            out.push_back(Value::string(norm.substr(start, nl - start)));
            check_list_size(out.size(), a.line);
            start = nl + 1;
        }
        return Value::list(std::move(out));
    }
    if (name == "isdigit") return Value::boolean(all_chars(s, isdigit));
    if (name == "isalpha") return Value::boolean(all_chars(s, isalpha));
    if (name == "isalnum") return Value::boolean(all_chars(s, isalnum));
    if (name == "isspace") return Value::boolean(!s.empty() && py_strip(s, nullptr, true, true).empty());
    fail_at(a.line, "unsupported string method '" + name + "'");
}

Value call_dict_method(const Value& d, const std::string& name, CallArgs& a) {
    std::vector<Value> out;
    if (name == "items" || name == "keys" || name == "values") {
        a.check(name.c_str(), 0, {});
        for (const auto& kv : d.dict_data().items) {
            if (name == "items") {
                out.push_back(Value::list({Value::string(kv.first), kv.second}, true));
            } else {
                out.push_back(name == "keys" ? Value::string(kv.first) : kv.second);
            }
        }
        Value view = Value::list(std::move(out));
        view.list_data().is_view = true;
        return view;
    }
    if (name == "get") {
        a.check("get", 2, {});
        Value key = a.get(0, "key");
        const Value* v = key.is_string() ? d.dict_data().find(key.as_string()) : nullptr;
        return v ? *v : a.get(1, "default", Value::none());
    }
    if (name == "copy") {
        Value c = Value::dict();
        c.dict_data().items = d.dict_data().items;
        return c;
    }
    fail_at(a.line, "unsupported: dict method '" + name + "' (templates cannot modify dicts)");
}

Value call_list_method(const Value& l, const std::string& name, CallArgs& a) {
    if (name == "index" || name == "count") {
        a.check(name.c_str(), 1, {});
        Value x = a.get(0, "value");
        int64_t n = 0;
        const auto& items = l.list_data().items;
        for (size_t i = 0; i < items.size(); ++i) {
            if (!value_equal(items[i], x)) continue;
            if (name == "index") return Value::integer(static_cast<int64_t>(i));
            ++n;
        }
        if (name == "index") fail_at(a.line, "list.index(x): x not in list");
        return Value::integer(n);
    }
    fail_at(a.line, "unsupported: list method '" + name + "' (templates cannot modify lists)");
}

const std::set<std::string>& str_methods() {
    static const std::set<std::string> m = {
        "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "upper", "lower", "title",
        "capitalize", "replace", "format", "join", "find", "rfind", "count", "index", "rindex", "splitlines",
        "isdigit", "isalpha", "isalnum", "isspace", "casefold", "center", "encode", "expandtabs", "format_map",
        "isdecimal", "islower", "isnumeric", "isupper", "istitle", "ljust", "partition", "rjust", "rpartition",
        "swapcase", "translate", "zfill", "removeprefix", "removesuffix"};
    return m;
}

Value bind(const Value& obj, const std::string& name) {
    return Value::callable(
        name,
        [obj, name](CallArgs& a) -> Value {
            if (obj.is_string()) return call_str_method(obj.as_string(), name, a);
            if (obj.is_dict()) return call_dict_method(obj, name, a);
            return call_list_method(obj, name, a);
        },
        &obj);
}

}  // namespace

Value jinja_getattr(const Value& obj, const std::string& name, int line) {
    jinja_require_defined(obj, line);
    static const std::set<std::string> dict_methods = {"items", "keys",   "values", "get",        "copy", "pop",
                                                       "popitem", "update", "clear", "setdefault", "fromkeys"};
    static const std::set<std::string> list_methods = {"index", "count",  "append", "extend", "insert",
                                                       "pop",   "remove", "sort",   "reverse", "clear", "copy"};
    switch (obj.kind()) {
        case Kind::DICT: {
            if (dict_methods.count(name)) return bind(obj, name);
            const Value* v = obj.dict_data().find(name);
            return v ? *v : Value::undefined(name);
        }
        case Kind::NAMESPACE: {
            const Value* v = obj.dict_data().find(name);
            return v ? *v : Value::undefined(name);
        }
        case Kind::STRING: return str_methods().count(name) ? bind(obj, name) : Value::undefined(name);
        case Kind::LIST:
            return list_methods.count(name) && !obj.list_data().is_iterator ? bind(obj, name) : Value::undefined(name);
        default: return Value::undefined(name);
    }
}

Value jinja_getitem(const Value& obj, const Value& key, int line) {
    jinja_require_defined(obj, line);
    if ((obj.is_list() && !obj.list_data().is_iterator) || obj.is_string()) {
        if (!key.is_integral()) return Value::undefined("item");
        int64_t n = value_length(obj, line), i = key.as_int();
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined("item");
        if (obj.is_list()) return obj.list_data().items[static_cast<size_t>(i)];
        return Value::string(utf8_encode(std::u32string(1, utf8_decode(obj.as_string())[static_cast<size_t>(i)])));
    }
    if (obj.is_dict() || obj.kind() == Kind::NAMESPACE) {
        const Value* v = key.is_string() ? obj.dict_data().find(key.as_string()) : nullptr;
        return v ? *v : Value::undefined(key.is_string() ? key.as_string() : "item");
    }
    return Value::undefined("item");
}

Value jinja_slice(const Value& obj, const Value* start, const Value* stop, const Value* step, int line) {
    jinja_require_defined(obj, line);
    if (!obj.is_string() && !(obj.is_list() && !obj.list_data().is_iterator))
        fail_at(line, "'" + obj.type_name() + "' object is not subscriptable");
    auto idx = [&](const Value* v) -> const Value* {
        if (v && !v->is_none() && !v->is_integral()) fail_at(line, "slice indices must be integers or None");
        return v && !v->is_none() ? v : nullptr;
    };
    start = idx(start), stop = idx(stop), step = idx(step);
    int64_t n = value_length(obj, line), st = step ? step->as_int() : 1;
    if (st == 0) fail_at(line, "slice step cannot be zero");
    auto clamp = [&](const Value* v, int64_t dflt) {  // Python's PySlice_AdjustIndices
        if (!v) return dflt;
        int64_t i = v->as_int();
        if (i < 0) i += n;
        if (i < 0) return st < 0 ? int64_t(-1) : int64_t(0);
        if (i >= n) return st < 0 ? n - 1 : n;
        return i;
    };
    int64_t b = clamp(start, st < 0 ? n - 1 : 0), e = clamp(stop, st < 0 ? -1 : n);
    std::vector<size_t> picks;
    // 128-bit index: i + st may leave int64 on the last step (x[1::9223372036854775807]).
    for (__int128 i = b; st > 0 ? i < e : i > e; i += st) picks.push_back(static_cast<size_t>(i));
    if (obj.is_string()) {
        std::u32string u = utf8_decode(obj.as_string()), out;
        for (size_t i : picks) out.push_back(u[i]);
        return Value::string(utf8_encode(out));
    }
    std::vector<Value> items;
    for (size_t i : picks) items.push_back(obj.list_data().items[i]);
    Value out = Value::list(std::move(items), obj.list_data().is_tuple);
    out.list_data().is_view = obj.list_data().is_view;  // a sliced range is a range
    return out;
}

namespace {

Value global_range(CallArgs& a) {
    a.check("range", 3, {});
    for (const auto& v : a.args)
        if (!v.is_integral()) fail_at(a.line, "range() arguments must be integers");
    if (a.args.empty()) fail_at(a.line, "range expected at least 1 argument");
    int64_t start = a.args.size() > 1 ? a.args[0].as_int() : 0;
    int64_t stop = a.args.size() > 1 ? a.args[1].as_int() : a.args[0].as_int();
    int64_t step = a.args.size() > 2 ? a.args[2].as_int() : 1;
    if (step == 0) fail_at(a.line, "range() arg 3 must not be zero");
    std::vector<Value> out;
    for (__int128 i = start; step > 0 ? i < stop : i > stop; i += step) {  // i + step may leave int64
        if (out.size() >= 100000) fail_at(a.line, "range too big (the sandbox allows 100000 items)");
        out.push_back(Value::integer(static_cast<int64_t>(i)));
    }
    Value range = Value::list(std::move(out));
    range.list_data().is_view = true;
    return range;
}

Value build_mapping(CallArgs& a, Value target, const char* what) {
    if (a.args.size() > 1) fail_at(a.line, std::string(what) + "() takes at most one positional argument");
    if (!a.args.empty()) {
        if (!a.args[0].is_dict()) fail_at(a.line, std::string(what) + "(): unsupported positional argument");
        for (const auto& kv : a.args[0].dict_data().items) target.dict_data().set(kv.first, kv.second);
    }
    for (const auto& kv : a.kwargs) target.dict_data().set(kv.first, kv.second);
    return target;
}

}  // namespace

Value jinja_global(const std::string& name) {
    if (name == "range") return Value::callable(name, global_range);
    if (name == "namespace") {
        return Value::callable(name, [](CallArgs& a) {
            Value ns = build_mapping(a, Value::namespace_object(), "namespace");
            for (const auto& kv : ns.dict_data().items)
                if (!kv.first.empty() && kv.first[0] == '_')
                    fail_at(a.line, "cannot store underscore-prefixed attribute '" + kv.first + "' on a namespace");
            return ns;
        });
    }
    if (name == "dict") return Value::callable(name, [](CallArgs& a) { return build_mapping(a, Value::dict(), "dict"); });
    if (name == "raise_exception") {
        return Value::callable(name, [](CallArgs& a) -> Value {
            LOTA_FAIL("chat template: raise_exception at line %d: %s", a.line, value_str(a.get(0, "message"), a.line).c_str());
        });
    }
    if (name == "strftime_now") {
        return Value::callable(name, [](CallArgs& a) {
            Value fmt = a.get(0, "format");
            if (!fmt.is_string()) fail_at(a.line, "strftime_now: expected a format string");
            std::time_t now = std::time(nullptr);
            std::tm tm{};
            localtime_r(&now, &tm);
            char buf[512];
            size_t n = fmt.as_string().empty() ? 0 : std::strftime(buf, sizeof buf, fmt.as_string().c_str(), &tm);
            if (n == 0 && !fmt.as_string().empty()) fail_at(a.line, "strftime_now: format produced no output");
            return Value::string(std::string(buf, n));
        });
    }
    return Value::undefined(name);
}

}  // namespace lota::text::jinja
