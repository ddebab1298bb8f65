// Jinja operators with Python semantics (see jinja_eval.h): arithmetic on int/float/bool with
// overflow checks, str and list concatenation/repetition, `%` string formatting (%s %d %r %%),
// comparisons and `in`. Undefined operands raise as jinja2's default Undefined does.
#include <cmath>
#include <limits>

#include "text/jinja_eval.h"
#include "text/jinja_limits.h"
#include "text/jinja_strings.h"
#include "util/check.h"

namespace lota::text::jinja {
namespace {

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b, int line) {
    fail_at(line, "unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

Value checked_int(__int128 v, int line) {
    if (v > std::numeric_limits<int64_t>::max() || v < std::numeric_limits<int64_t>::min())
        fail_at(line, "unsupported: integer result does not fit in 64 bits");
    return Value::integer(static_cast<int64_t>(v));
}

Value repeat(const Value& seq, int64_t n, int line) {
    if (n > 1000000) fail_at(line, "repetition count too large");
    // Checked before allocating: ('x' * 1000000) * 1000000 would ask for a terabyte.
    const size_t count = n > 0 ? static_cast<size_t>(n) : 0;
    if (seq.is_string()) {
        check_text_size(count * seq.as_string().size(), line);
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq.as_string();
        return Value::string(out);
    }
    check_list_size(count * seq.list_data().items.size(), line);
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i)
        for (const auto& v : seq.list_data().items) items.push_back(v);
    return Value::list(std::move(items), seq.list_data().is_tuple);
}

Value arith(const std::string& op, const Value& a, const Value& b, int line) {
    if (a.is_integral() && b.is_integral()) {
        __int128 x = a.as_int(), y = b.as_int();
        if (op == "+") return checked_int(x + y, line);
        if (op == "-") return checked_int(x - y, line);
        if (op == "*") return checked_int(x * y, line);
        if (op == "/") {
            if (y == 0) fail_at(line, "division by zero");
            return Value::number(static_cast<double>(a.as_int()) / static_cast<double>(b.as_int()));
        }
        if (op == "//" || op == "%") {
            if (y == 0) fail_at(line, "integer division or modulo by zero");
            __int128 q = x / y, r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) {
                q -= 1;
                r += y;
            }
            return checked_int(op == "//" ? q : r, line);
        }
        if (op == "**" && y >= 0) {
            // |x| <= 1 never overflows, so the loop below would run y times.
            if (x == 0 || x == 1) return Value::integer(y == 0 ? 1 : static_cast<int64_t>(x));
            if (x == -1) return Value::integer(y % 2 == 0 ? 1 : -1);
            __int128 r = 1;
            for (__int128 i = 0; i < y; ++i) {
                r *= x;
                if (r > std::numeric_limits<int64_t>::max() || r < std::numeric_limits<int64_t>::min())
                    fail_at(line, "unsupported: integer result does not fit in 64 bits");
            }
            return Value::integer(static_cast<int64_t>(r));
        }
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (op == "**") return Value::number(std::pow(x, y));
    if (y == 0.0) fail_at(line, "float division by zero");
    if (op == "/") return Value::number(x / y);
    double m = std::fmod(x, y), div = (x - m) / y;  // CPython's float_divmod
    if (m != 0.0 && ((y < 0) != (m < 0))) {
        m += y;
        div -= 1.0;
    }
    if (op == "%") return Value::number(m);
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return Value::number(div != 0.0 ? fl : std::copysign(0.0, x / y));
}

// printf-style `str % args` for the conversions templates use.
Value percent_format(const std::string& fmt, const Value& arg, int line) {
    std::vector<Value> args;
    if (arg.is_list() && arg.list_data().is_tuple) {
        args = arg.list_data().items;
    } else {
        args.push_back(arg);
    }
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        if (i + 1 >= fmt.size()) fail_at(line, "incomplete format");
        char c = fmt[++i];
        if (c == '%') {
            out += '%';
            continue;
        }
        if (c != 's' && c != 'd' && c != 'r' && c != 'i')
            fail_at(line, std::string("unsupported: '%") + c + "' in string formatting");
        if (next >= args.size()) fail_at(line, "not enough arguments for format string");
        const Value& v = args[next++];
        if (c == 's') {
            out += value_str(v, line);
        } else if (c == 'r') {
            out += value_repr(v, line);
        } else {
            if (!v.is_number()) fail_at(line, "%d format: a real number is required, not " + v.type_name());
            out += std::to_string(v.kind() == Kind::FLOAT ? float_to_int(v.as_double(), line) : v.as_int());
        }
    }
    if (next < args.size()) fail_at(line, "not all arguments converted during string formatting");
    return Value::string(out);
}

}  // namespace

void jinja_require_defined(const Value& v, int line) {
    if (v.is_undefined()) fail_at(line, "'" + (v.as_string().empty() ? "value" : v.as_string()) + "' is undefined");
}

Value jinja_binary(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "~") {
        std::string x = value_str(a, line), y = value_str(b, line);
        check_text_size(x.size() + y.size(), line);
        return Value::string(x + y);
    }
    jinja_require_defined(a, line);
    jinja_require_defined(b, line);
    if (a.is_number() && b.is_number()) return arith(op, a, b, line);
    if (op == "+") {
        if (a.is_string() && b.is_string()) {
            check_text_size(a.as_string().size() + b.as_string().size(), line);
            return Value::string(a.as_string() + b.as_string());
        }
        if (a.is_list() && b.is_list() && !a.list_data().is_iterator && !b.list_data().is_iterator &&
            !a.list_data().is_view && !b.list_data().is_view && a.list_data().is_tuple == b.list_data().is_tuple) {
            check_list_size(a.list_data().items.size() + b.list_data().items.size(), line);
            std::vector<Value> items = a.list_data().items;
            for (const auto& v : b.list_data().items) items.push_back(v);
            return Value::list(std::move(items), a.list_data().is_tuple);
        }
    }
    if (op == "*") {
        bool a_seq = a.is_string() || (a.is_list() && !a.list_data().is_iterator && !a.list_data().is_view);
        bool b_seq = b.is_string() || (b.is_list() && !b.list_data().is_iterator && !b.list_data().is_view);
        if (a_seq && b.is_integral()) return repeat(a, b.as_int(), line);
        if (b_seq && a.is_integral()) return repeat(b, a.as_int(), line);
    }
    if (op == "%" && a.is_string()) return percent_format(a.as_string(), b, line);
    bad_operands(op, a, b, line);
}

bool jinja_contains(const Value& haystack, const Value& needle, int line) {
    switch (haystack.kind()) {
        case Kind::UNDEFINED: return false;
        case Kind::STRING:
            if (!needle.is_string())
                fail_at(line, "'in <string>' requires string as left operand, not " + needle.type_name());
            return haystack.as_string().find(needle.as_string()) != std::string::npos;
        case Kind::LIST:
            for (const auto& v : value_iterate(haystack, line))
                if (value_equal(v, needle)) return true;
            return false;
        case Kind::DICT: return needle.is_string() && haystack.dict_data().find(needle.as_string()) != nullptr;
        default: fail_at(line, "argument of type '" + haystack.type_name() + "' is not iterable");
    }
}

bool jinja_compare(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "==") return value_equal(a, b);
    if (op == "!=") return !value_equal(a, b);
    if (op == "in") return jinja_contains(b, a, line);
    if (op == "notin") return !jinja_contains(b, a, line);
    jinja_require_defined(a, line);
    jinja_require_defined(b, line);
    if (op == "<") return value_less(a, b, line);
    if (op == ">") return value_less(b, a, line);
    if (op == "<=") return !value_less(b, a, line);
    if (op == ">=") return !value_less(a, b, line);
    fail_at(line, "unsupported comparison '" + op + "'");
}

}  // namespace lota::text::jinja
