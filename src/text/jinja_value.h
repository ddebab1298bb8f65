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
};

struct DictData {
    std::vector<std::pair<std::string, Value>> items;  ///< insertion order, as Python dicts
    const Value* find(const std::string& key) const;
    void set(const std::string& key, Value v);
};

using NativeFn = std::function<Value(CallArgs& args)>;

struct CallableData {
    std::string name;
    NativeFn fn;
};

class Value {
  public:
    Value() = default;  ///< undefined
    static Value undefined(std::string name = "");
    static Value none();
    static Value boolean(bool b);
    static Value integer(int64_t i);
    static Value number(double f);
    static Value string(std::string s);
    static Value list(std::vector<Value> items = {}, bool is_tuple = false);
    static Value iterator(std::vector<Value> items);
    static Value dict();
    static Value namespace_object();
    static Value callable(std::string name, NativeFn fn);
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
    const std::string& as_string() const { return s_; }  ///< string value, or undefined's name
    ListData& list_data() const { return *list_; }
    DictData& dict_data() const { return *dict_; }  ///< dicts and namespaces
    const CallableData& callable_data() const { return *fn_; }
    bool same_object(const Value& o) const;

    /// Python truthiness (generators are always true, as Python objects).
    bool truthy() const;
    /// Python type name for messages ("str", "list", ...).
    std::string type_name() const;

  private:
    Kind kind_ = Kind::UNDEFINED;
    bool b_ = false;
    int64_t i_ = 0;
    double f_ = 0.0;
    std::string s_;
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
