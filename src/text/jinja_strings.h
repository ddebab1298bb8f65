// Python str semantics on UTF-8 strings for the Jinja interpreter: code-point decoding,
// whitespace as str.isspace() sees it, strip/split/replace/case mapping and repr(). Case
// mapping covers ASCII, Latin-1, Latin Extended-A and basic Greek and Cyrillic letters; other
// cased letters make it throw lota::Error (unsupported) instead of giving a wrong result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lota::text::jinja {

/// UTF-8 → code points; an invalid byte decodes as itself (U+0080..U+00FF).
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);

/// Python str.isspace() for one code point.
bool py_isspace(char32_t c);
/// str.strip/lstrip/rstrip; `chars` = nullptr strips whitespace.
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right);
/// str.split / str.rsplit; `sep` = nullptr splits on whitespace runs. maxsplit < 0: no limit.
std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit, bool from_right);
/// str.replace(old, new, count); count < 0: all. Throws (naming template `line`) when the result
/// would exceed kMaxTextBytes.
std::string py_replace(const std::string& s, const std::string& old_s, const std::string& new_s, int64_t count,
                       int line);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_title(const std::string& s);
std::string py_capitalize(const std::string& s);
/// Python repr() of a str ('abc', "it's", '\n').
std::string py_string_repr(const std::string& s);
/// A JSON string literal as Python's json.dumps writes it.
std::string json_string(const std::string& s, bool ensure_ascii);

}  // namespace lota::text::jinja
