// Values of the Jinja subset interpreter behind chat templates (see chat_template.h): Python
// semantics for truthiness, equality, ordering, str() and repr(), as jinja2 sees Python objects.
// Lists, dicts and namespaces are shared by reference, as in Python. Dict keys are strings only
// (chat template data is JSON); anything else is rejected where it is built.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::text::jinja {

enum class Kind { UNDEFINED, NONE, BOOL, INT, FLOAT, STRING, LIST, DICT, NAMESPACE, CALLABLE };

class Value;
struct CallArgs;

struct ListData {
    std::vector<Value> items;
    bool is_tuple = false;
    /// A generator (jinja2's select/map/reverse...): single pass, no len(), always truthy.
    bool is_iterator = false;
    /// dict.items()/keys()/values() or range(): sized and iterable, but Python prints them as
    /// "dict_items([...])" / "range(0, 3)", which lota refuses to print.
    bool is_view = false;
    int depth = 1;                 ///< 1 + the deepest item's depth (Note [value nesting])
    bool holds_namespace = false;  ///< a namespace is among the items, at any depth
};

struct DictData {
    std::vector<std::pair<std::string, Value>> items;  ///< insertion order, as Python dicts
    const Value* find(const std::string& key) const;
    /// Inserts or replaces; throws when the value would nest deeper than kMaxValueDepth.
    void set(const std::string& key, Value v);
    int depth = 1;                 ///< 1 + the deepest value's depth, never lowered (Note [value nesting])
    bool holds_namespace = false;  ///< a namespace is among the values, at any depth
};

using NativeFn = std::function<Value(CallArgs& args)>;

struct CallableData {
    std::string name;
    NativeFn fn;
    int depth = 1;                 ///< 1 + the bound object's depth (methods such as dict.items)
    bool holds_namespace = false;  ///< the bound object is or holds a namespace
};

class Value {
  public:
    Value() = default;  ///< undefined
    static Value undefined(std::string name = "");
    static Value none();
    static Value boolean(bool b);
    static Value integer(int64_t i);
    static Value number(double f);
    /// Throws when `s` is longer than kMaxTextBytes.
    static Value string(std::string s);
    /// Throws when `items` exceed kMaxListItems or nest deeper than kMaxValueDepth.
    static Value list(std::vector<Value> items = {}, bool is_tuple = false);
    static Value iterator(std::vector<Value> items);
    static Value dict();
    static Value namespace_object();
    /// A function; `bound` is the object a method was taken from (it is kept alive by `fn`).
    static Value callable(std::string name, NativeFn fn, const Value* bound = nullptr);
    static Value from_json(const nlohmann::ordered_json& j);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::UNDEFINED; }
    bool is_none() const { return kind_ == Kind::NONE; }
    bool is_string() const { return kind_ == Kind::STRING; }
    bool is_list() const { return kind_ == Kind::LIST; }
    bool is_dict() const { return kind_ == Kind::DICT; }
    bool is_number() const { return kind_ == Kind::BOOL || kind_ == Kind::INT || kind_ == Kind::FLOAT; }
    bool is_integral() const { return kind_ == Kind::BOOL || kind_ == Kind::INT; }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return kind_ == Kind::BOOL ? (b_ ? 1 : 0) : i_; }
    double as_double() const { return kind_ == Kind::FLOAT ? f_ : static_cast<double>(as_int()); }
    const std::string& as_string() const;  ///< string value, or undefined's name
    ListData& list_data() const { return *list_; }
    DictData& dict_data() const { return *dict_; }  ///< dicts and namespaces
    const CallableData& callable_data() const { return *fn_; }
    bool same_object(const Value& o) const;
    /// Nesting depth: 0 for scalars and strings, 1 + the deepest element for containers.
    int depth() const;
    /// Whether this value is a namespace or holds one (Note [value nesting]).
    bool holds_namespace() const;

    /// Python truthiness (generators are always true, as Python objects).
    bool truthy() const;
    /// Python type name for messages ("str", "list", ...).
    std::string type_name() const;

  private:
    Kind kind_ = Kind::UNDEFINED;
    bool b_ = false;
    int64_t i_ = 0;
    double f_ = 0.0;
    std::shared_ptr<const std::string> s_;  ///< shared: copying a value never copies its text
    std::shared_ptr<ListData> list_;
    std::shared_ptr<DictData> dict_;
    std::shared_ptr<CallableData> fn_;
};

/// Positional and keyword arguments of a call, with the template line for messages.
struct CallArgs {
    std::vector<Value> args;
    std::vector<std::pair<std::string, Value>> kwargs;
    int line = 0;
    /// Argument `pos` or keyword `name`; `fallback` when neither was given.
    Value get(size_t pos, const std::string& name, Value fallback = Value()) const;
    bool has(size_t pos, const std::string& name) const;
    /// Fails unless at most `max_pos` positionals and only the listed keywords were given.
    void check(const char* what, size_t max_pos, const std::vector<std::string>& names) const;
};

/// Python str(): what `{{ value }}` prints ("True", "None", "[1, 'a']", "" for undefined).
std::string value_str(const Value& v, int line);
/// Python repr().
std::string value_repr(const Value& v, int line);
/// Python float repr ("1.0", "0.1", "1e+20").
std::string float_repr(double f);
/// Python int(f): truncates toward zero; throws when f is not finite or beyond 64 bits.
int64_t float_to_int(double f, int line);
/// Python ==.
bool value_equal(const Value& a, const Value& b);
/// Python <; throws for unorderable types.
bool value_less(const Value& a, const Value& b, int line);
/// Items of an iterable (list, tuple, dict keys, string characters, undefined → empty); a
/// generator is consumed. Throws for non-iterables.
std::vector<Value> value_iterate(const Value& v, int line);
/// Python len(); throws for values without one (numbers, generators).
int64_t value_length(const Value& v, int line);
/// json.dumps(v, ensure_ascii, indent, separators, sort_keys), as transformers' tojson filter.
/// `indent` = nullptr: no newlines; otherwise the indentation unit.
std::string value_to_json(const Value& v, bool ensure_ascii, const std::string* indent, const std::string& item_sep,
                          const std::string& key_sep, bool sort_keys, int line);

/// "chat template: <msg> at line N" as lota::Error.
[[noreturn]] void fail_at(int line, const std::string& msg);

}  // namespace lota::text::jinja
