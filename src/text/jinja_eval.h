// Jinja evaluator for chat templates: renders a parsed template (jinja_ast.h) with jinja2's
// runtime rules (per-iteration loop scopes, `loop` variables, namespaces, macros, default
// Undefined). Also declares the pieces the evaluator is split into: operators
// (jinja_ops.cpp), attribute/item access, methods and globals (jinja_methods.cpp), filters
// and tests (jinja_filters.cpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "text/jinja_ast.h"
#include "text/jinja_value.h"

namespace lota::text::jinja {

/// Renders `body` with the template variables `vars` (in order). Throws lota::Error.
std::string jinja_render(const Body& body, const std::vector<std::pair<std::string, Value>>& vars);

/// Binary arithmetic: + - * / // % ** ~ (Python semantics; errors on undefined operands).
Value jinja_binary(const std::string& op, const Value& a, const Value& b, int line);
/// Comparison operators == != < <= > >= in notin.
bool jinja_compare(const std::string& op, const Value& a, const Value& b, int line);
/// Python `needle in haystack` (undefined haystack → false).
bool jinja_contains(const Value& haystack, const Value& needle, int line);
/// Throws "'name' is undefined" when v is undefined (jinja2's UndefinedError).
void jinja_require_defined(const Value& v, int line);

/// obj.name: a dict key, a namespace attribute, or a bound method of str/dict/list; undefined
/// when absent (throws when obj itself is undefined, as jinja2 does).
Value jinja_getattr(const Value& obj, const std::string& name, int line);
/// obj[key] with negative indices; undefined when absent.
Value jinja_getitem(const Value& obj, const Value& key, int line);
/// obj[start:stop:step] for lists, tuples and strings; nullptr parts are omitted.
Value jinja_slice(const Value& obj, const Value* start, const Value* stop, const Value* step, int line);
/// A global function (range, namespace, dict, raise_exception, strftime_now); undefined if none.
Value jinja_global(const std::string& name);

/// `value | name(args)`; throws "unknown filter 'name'" for filters not implemented.
Value jinja_filter(const std::string& name, const Value& value, CallArgs& args);
/// `value is name(args)`; throws "unknown test 'name'" for tests not implemented.
bool jinja_test(const std::string& name, const Value& value, CallArgs& args);
/// Whether jinja2 has a filter / test of this name (it rejects other names when compiling).
bool jinja_filter_known(const std::string& name);
bool jinja_test_known(const std::string& name);

}  // namespace lota::text::jinja
