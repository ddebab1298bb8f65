// printf-style formatting into std::string (the one formatter lota uses for messages).
#pragma once

#include <cstdarg>
#include <string>
#include <vector>
#include <cstdint>

namespace lota {

/// printf-style format to std::string.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrfmt(const char* fmt, va_list ap);

/// "[2, 3, 4]" for a shape.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace lota
