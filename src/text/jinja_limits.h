// Resource limits of the Jinja interpreter behind chat templates. A chat template is a file the
// user gives, and Jinja can nest, loop and multiply strings, so each resource has a bound that no
// real template comes near; exceeding one throws lota::Error naming the limit (docs/errors.md).
// Note [template limits]: recursion (parser, evaluator, value printing) is bounded by depth limits
// so that a hostile template fails with a message instead of overflowing the stack; memory by the
// string, output and list sizes, checked before a multiplying operation allocates; time by a
// step count over statements and expressions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lota::text::jinja {

/// Nested blocks, brackets, unary operators, calls and subscripts in one template.
constexpr int kMaxParseDepth = 200;
/// Nested statement and expression evaluations, macro calls included (long operator chains such
/// as a ~ b ~ c ... build trees as tall as they are long, so this is checked apart from parsing).
constexpr int kMaxEvalDepth = 500;
/// Nested lists, dicts and namespaces a template value may have (above the JSON input limit).
constexpr int kMaxValueDepth = 600;
/// Longest string a template may build, and longest rendered output.
constexpr size_t kMaxTextBytes = size_t(64) << 20;
/// Most items in one list (repetition, concatenation, split, iterating a string).
constexpr size_t kMaxListItems = 1000000;
/// Statements, expressions and loop iterations evaluated in one rendering.
constexpr int64_t kMaxEvalSteps = 10000000;

/// Throws "chat template: string of N bytes exceeds the 64 MiB limit at line L" when bytes > kMaxTextBytes.
void check_text_size(size_t bytes, int line);
/// Throws "chat template: list of N items exceeds the 1000000-item limit at line L" when n > kMaxListItems.
void check_list_size(size_t n, int line);

}  // namespace lota::text::jinja
