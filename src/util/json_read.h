// Bounded JSON parsing for every document a user gives (config.json, tokenizer.json, adapter and
// quantize configs, datasets, token-id files, JSON flags). nlohmann's parser itself is iterative,
// but the code that walks, copies or prints a parsed document recurses once per level, so a file
// nested 100,000 deep would exhaust the stack there; the limit stops it at the parser, naming the
// file. Malformed text keeps nlohmann's contract, so each caller still words it its own way.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lota {

/// Deepest nesting of arrays and objects accepted (real configs and tokenizers nest < 10 deep).
constexpr int kJsonMaxDepth = 512;

/// Parses `text` like nlohmann::json::parse(text, nullptr, allow_exceptions): malformed text throws
/// nlohmann::json::exception (parse_error; out_of_range for a number beyond double, e.g. 1e400),
/// or gives a discarded value when `allow_exceptions` is false.
/// Throws lota::Error "SOURCE: JSON nested deeper than 512 levels" for deeper documents.
nlohmann::json json_parse(std::string_view text, const std::string& source, bool allow_exceptions = true);
/// The same for nlohmann::ordered_json (keys keep their file order: chat messages, templates).
nlohmann::ordered_json json_parse_ordered(std::string_view text, const std::string& source,
                                          bool allow_exceptions = true);

/// The integer `v` holds, checked to lie in [lo, hi]: every integer lota reads from a user's JSON
/// goes through this. nlohmann's get<int>() turns a float such as 1e30 into an integer by a plain
/// cast (undefined behaviour) and wraps integers that do not fit. Integral floats (16.0) are
/// accepted, as Python writes them after arithmetic.
/// Throws lota::Error "WHAT must be an integer in [LO, HI], got V".
int64_t json_int(const nlohmann::json& v, const std::string& what, int64_t lo = std::numeric_limits<int64_t>::min(),
                 int64_t hi = std::numeric_limits<int64_t>::max());

/// json_int(j[key]) when `j` is an object holding `key` with a non-null value, else `fallback`.
int64_t json_int_or(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& what,
                    int64_t lo = std::numeric_limits<int64_t>::min(),
                    int64_t hi = std::numeric_limits<int64_t>::max());

}  // namespace lota
