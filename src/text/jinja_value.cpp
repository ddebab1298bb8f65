// Jinja values with Python semantics: construction from JSON, truthiness, ==, <, str(), repr()
// and len(). JSON output (tojson) lives in jinja_json.cpp; string helpers in jinja_strings.cpp.
#include "text/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "text/jinja_limits.h"
#include "text/jinja_strings.h"
#include "util/check.h"

namespace lota::text::jinja {

// Note [value nesting]: printing, comparing, serialising and releasing a value recurse once per
// level, so every container records its depth when built and refuses to exceed kMaxValueDepth.
// Lists and dicts are immutable in templates, so their recorded depth stays exact; namespaces are
// the one mutable container (`set ns.attr = v`), so the evaluator refuses to store a namespace,
// or anything holding one, in a namespace attribute. That keeps values acyclic (no reference
// cycles, which would also leak) and bounds any stale depth by one more kMaxValueDepth.

void fail_at(int line, const std::string& msg) { LOTA_FAIL("chat template: %s at line %d", msg.c_str(), line); }

void check_text_size(size_t bytes, int line) {
    if (bytes > kMaxTextBytes)
        fail_at(line, strfmt("string of %zu bytes exceeds the %zu MiB limit", bytes, kMaxTextBytes >> 20));
}

void check_list_size(size_t n, int line) {
    if (n > kMaxListItems) fail_at(line, strfmt("list of %zu items exceeds the %zu-item limit", n, kMaxListItems));
}

namespace {

void check_value_depth(int depth) {
    LOTA_CHECK(depth <= kMaxValueDepth, "chat template: values nested deeper than %d levels (lists, dicts, namespaces)",
               kMaxValueDepth);
}

}  // namespace

const Value* DictData::find(const std::string& key) const {
    for (const auto& kv : items)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

void DictData::set(const std::string& key, Value v) {
    check_value_depth(v.depth() + 1);
    depth = std::max(depth, v.depth() + 1);
    holds_namespace = holds_namespace || v.holds_namespace();
    for (auto& kv : items)
        if (kv.first == key) {
            kv.second = std::move(v);
            return;
        }
    items.emplace_back(key, std::move(v));
}

Value Value::undefined(std::string name) {
    Value v;
    if (!name.empty()) v.s_ = std::make_shared<const std::string>(std::move(name));
    return v;
}
Value Value::none() {
    Value v;
    v.kind_ = Kind::NONE;
    return v;
}
Value Value::boolean(bool b) {
    Value v;
    v.kind_ = Kind::BOOL;
    v.b_ = b;
    return v;
}
Value Value::integer(int64_t i) {
    Value v;
    v.kind_ = Kind::INT;
    v.i_ = i;
    return v;
}
Value Value::number(double f) {
    Value v;
    v.kind_ = Kind::FLOAT;
    v.f_ = f;
    return v;
}
Value Value::string(std::string s) {
    Value v;
    LOTA_CHECK(s.size() <= kMaxTextBytes, "chat template: string of %zu bytes exceeds the %zu MiB limit", s.size(),
               kMaxTextBytes >> 20);
    v.kind_ = Kind::STRING;
    v.s_ = std::make_shared<const std::string>(std::move(s));
    return v;
}
Value Value::list(std::vector<Value> items, bool is_tuple) {
    Value v;
    LOTA_CHECK(items.size() <= kMaxListItems, "chat template: list of %zu items exceeds the %zu-item limit",
               items.size(), kMaxListItems);
    v.kind_ = Kind::LIST;
    v.list_ = std::make_shared<ListData>();
    for (const Value& item : items) {
        v.list_->depth = std::max(v.list_->depth, item.depth() + 1);
        v.list_->holds_namespace = v.list_->holds_namespace || item.holds_namespace();
    }
    check_value_depth(v.list_->depth);
    v.list_->items = std::move(items);
    v.list_->is_tuple = is_tuple;
    return v;
}
Value Value::iterator(std::vector<Value> items) {
    Value v = list(std::move(items));
    v.list_->is_iterator = true;
    return v;
}
Value Value::dict() {
    Value v;
    v.kind_ = Kind::DICT;
    v.dict_ = std::make_shared<DictData>();
    return v;
}
Value Value::namespace_object() {
    Value v = dict();
    v.kind_ = Kind::NAMESPACE;
    return v;
}
Value Value::callable(std::string name, NativeFn fn, const Value* bound) {
    Value v;
    v.kind_ = Kind::CALLABLE;
    v.fn_ = std::make_shared<CallableData>(CallableData{std::move(name), std::move(fn)});
    if (bound) {
        check_value_depth(bound->depth() + 1);
        v.fn_->depth = bound->depth() + 1;
        v.fn_->holds_namespace = bound->holds_namespace();
    }
    return v;
}

const std::string& Value::as_string() const {
    static const std::string empty;
    return s_ ? *s_ : empty;
}

int Value::depth() const {
    if (list_) return list_->depth;
    if (dict_) return dict_->depth;
    if (fn_) return fn_->depth;
    return 0;
}

bool Value::holds_namespace() const {
    if (kind_ == Kind::NAMESPACE) return true;
    if (list_) return list_->holds_namespace;
    if (dict_) return dict_->holds_namespace;
    if (fn_) return fn_->holds_namespace;
    return false;
}

namespace {

Value value_from_json(const nlohmann::ordered_json& j, int depth) {
    check_value_depth(depth);
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return Value::none();
        case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            uint64_t u = j.get<uint64_t>();
            LOTA_CHECK(u <= static_cast<uint64_t>(INT64_MAX), "chat template: integer %llu in the input is too large",
                       static_cast<unsigned long long>(u));
            return Value::integer(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float: return Value::number(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            std::vector<Value> items;
            for (const auto& e : j) items.push_back(value_from_json(e, depth + 1));
            return Value::list(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
            Value d = Value::dict();
            for (auto it = j.begin(); it != j.end(); ++it)
                d.dict_data().set(it.key(), value_from_json(it.value(), depth + 1));
            return d;
        }
        default: LOTA_FAIL("chat template: unsupported JSON value of type %s in the input", j.type_name());
    }
}

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j, 0); }

bool Value::same_object(const Value& o) const {
    if (kind_ != o.kind_) return false;
    if (list_ || dict_ || fn_) return list_ == o.list_ && dict_ == o.dict_ && fn_ == o.fn_;
    return value_equal(*this, o);
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::UNDEFINED:
        case Kind::NONE: return false;
        case Kind::BOOL: return b_;
        case Kind::INT: return i_ != 0;
        case Kind::FLOAT: return f_ != 0.0;
        case Kind::STRING: return !as_string().empty();
        case Kind::LIST: return list_->is_iterator || !list_->items.empty();
        case Kind::DICT: return !dict_->items.empty();
        default: return true;
    }
}

std::string Value::type_name() const {
    switch (kind_) {
        case Kind::UNDEFINED: return "Undefined";
        case Kind::NONE: return "NoneType";
        case Kind::BOOL: return "bool";
        case Kind::INT: return "int";
        case Kind::FLOAT: return "float";
        case Kind::STRING: return "str";
        case Kind::LIST: return list_->is_iterator ? "generator" : list_->is_tuple ? "tuple" : "list";
        case Kind::DICT: return "dict";
        case Kind::NAMESPACE: return "Namespace";
        case Kind::CALLABLE: return "function";
    }
    return "?";
}

Value CallArgs::get(size_t pos, const std::string& name, Value fallback) const {
    if (pos < args.size()) return args[pos];
    for (const auto& kv : kwargs)
        if (kv.first == name) return kv.second;
    return fallback;
}

bool CallArgs::has(size_t pos, const std::string& name) const {
    if (pos < args.size()) return true;
    for (const auto& kv : kwargs)
        if (kv.first == name) return true;
    return false;
}

void CallArgs::check(const char* what, size_t max_pos, const std::vector<std::string>& names) const {
    if (args.size() > max_pos) fail_at(line, strfmt("%s takes at most %zu positional arguments", what, max_pos));
    for (const auto& kv : kwargs) {
        bool known = false;
        for (const auto& n : names) known = known || n == kv.first;
        if (!known) fail_at(line, strfmt("%s got an unexpected keyword argument '%s'", what, kv.first.c_str()));
    }
}

std::string float_repr(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
    char buf[64];
    for (int prec = 1; prec <= 17; ++prec) {  // shortest digits that round-trip, as Python's repr
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (std::strtod(buf, nullptr) == f) break;
    }
    std::string s = buf;
    bool neg = s[0] == '-';
    if (neg) s = s.substr(1);
    size_t epos = s.find('e');
    int exp = std::atoi(s.c_str() + epos + 1);
    std::string digits;
    for (size_t i = 0; i < epos; ++i)
        if (s[i] != '.') digits += s[i];
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    std::string out;
    if (exp < -4 || exp >= 16) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        out += strfmt("e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    } else if (exp < 0) {
        out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
        size_t ip = static_cast<size_t>(exp) + 1;
        if (digits.size() <= ip) {
            out = digits + std::string(ip - digits.size(), '0') + ".0";
        } else {
            out = digits.substr(0, ip) + "." + digits.substr(ip);
        }
    }
    return neg ? "-" + out : out;
}

int64_t float_to_int(double f, int line) {
    // 2^63 is exact as a double; casting a value at or beyond it is undefined behaviour.
    if (!(f > -9223372036854775808.0 && f < 9223372036854775808.0))
        fail_at(line, "unsupported: integer result does not fit in 64 bits");
    return static_cast<int64_t>(f);
}

static std::string repr_items(const Value& v, int line) {
    std::string out;
    const ListData& l = v.list_data();
    for (size_t i = 0; i < l.items.size(); ++i) {
        out += (i ? ", " : "") + value_repr(l.items[i], line);
        check_text_size(out.size(), line);  // a list of many copies of one long string
    }
    return out;
}

std::string value_repr(const Value& v, int line) {
    switch (v.kind()) {
        case Kind::STRING: return py_string_repr(v.as_string());
        case Kind::UNDEFINED: return "Undefined";
        case Kind::LIST: {
            if (v.list_data().is_iterator) fail_at(line, "unsupported: printing a generator (add |list)");
            if (v.list_data().is_view) fail_at(line, "unsupported: printing a dict view or range (add |list)");
            if (!v.list_data().is_tuple) return "[" + repr_items(v, line) + "]";
            return "(" + repr_items(v, line) + (v.list_data().items.size() == 1 ? ",)" : ")");
        }
        case Kind::DICT: {
            std::string out = "{";
            bool first = true;
            for (const auto& kv : v.dict_data().items) {
                out += (first ? "" : ", ") + py_string_repr(kv.first) + ": " + value_repr(kv.second, line);
                check_text_size(out.size(), line);
                first = false;
            }
            return out + "}";
        }
        default: return value_str(v, line);
    }
}

std::string value_str(const Value& v, int line) {
    switch (v.kind()) {
        case Kind::UNDEFINED: return "";
        case Kind::NONE: return "None";
        case Kind::BOOL: return v.as_bool() ? "True" : "False";
        case Kind::INT: return std::to_string(v.as_int());
        case Kind::FLOAT: return float_repr(v.as_double());
        case Kind::STRING: return v.as_string();
        case Kind::LIST:
        case Kind::DICT: return value_repr(v, line);
        default: fail_at(line, "unsupported: printing a " + v.type_name() + " object");
    }
}

bool value_equal(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
        return a.as_double() == b.as_double();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::UNDEFINED:
        case Kind::NONE: return true;
        case Kind::STRING: return a.as_string() == b.as_string();
        case Kind::LIST: {
            const ListData &x = a.list_data(), &y = b.list_data();
            if (x.is_iterator || y.is_iterator || x.is_view != y.is_view) return &x == &y;
            if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
            for (size_t i = 0; i < x.items.size(); ++i)
                if (!value_equal(x.items[i], y.items[i])) return false;
            return true;
        }
        case Kind::DICT: {
            const DictData &x = a.dict_data(), &y = b.dict_data();
            if (x.items.size() != y.items.size()) return false;
            for (const auto& kv : x.items) {
                const Value* o = y.find(kv.first);
                if (!o || !value_equal(kv.second, *o)) return false;
            }
            return true;
        }
        default: return a.same_object(b);
    }
}

bool value_less(const Value& a, const Value& b, int line) {
    if (a.is_number() && b.is_number()) {
        if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int();
        return a.as_double() < b.as_double();
    }
    if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 bytes order as code points
    if (a.is_list() && b.is_list() && a.list_data().is_tuple == b.list_data().is_tuple &&
        !a.list_data().is_iterator && !b.list_data().is_iterator) {
        const auto &x = a.list_data().items, &y = b.list_data().items;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (value_less(x[i], y[i], line)) return true;
            if (value_less(y[i], x[i], line)) return false;
        }
        return x.size() < y.size();
    }
    fail_at(line, "'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

std::vector<Value> value_iterate(const Value& v, int line) {
    switch (v.kind()) {
        case Kind::UNDEFINED: return {};
        case Kind::LIST: {
            ListData& l = v.list_data();
            if (!l.is_iterator) return l.items;
            std::vector<Value> items = std::move(l.items);  // generators are single pass
            l.items.clear();
            return items;
        }
        case Kind::DICT: {
            std::vector<Value> keys;
            for (const auto& kv : v.dict_data().items) keys.push_back(Value::string(kv.first));
            return keys;
        }
        case Kind::STRING: {
            std::u32string u = utf8_decode(v.as_string());
            check_list_size(u.size(), line);
            std::vector<Value> chars;
            for (char32_t c : u) chars.push_back(Value::string(utf8_encode(std::u32string(1, c))));
            return chars;
        }
        default: fail_at(line, "'" + v.type_name() + "' object is not iterable");
    }
}

int64_t value_length(const Value& v, int line) {
    switch (v.kind()) {
        case Kind::UNDEFINED: return 0;
        case Kind::STRING: return static_cast<int64_t>(utf8_decode(v.as_string()).size());
        case Kind::LIST:
            if (v.list_data().is_iterator) fail_at(line, "object of type 'generator' has no len()");
            return static_cast<int64_t>(v.list_data().items.size());
        case Kind::DICT: return static_cast<int64_t>(v.dict_data().items.size());
        default: fail_at(line, "object of type '" + v.type_name() + "' has no len()");
    }
}

}  // namespace lota::text::jinja
