// printf-style formatting and small string helpers shared by messages.
#include "util/strfmt.h"

#include <cstdio>

#include "util/check.h"

namespace lota {

std::string vstrfmt(const char* fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return fmt;
    std::string out(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(out.data(), out.size(), fmt, ap);
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string strfmt(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vstrfmt(fmt, ap);
    va_end(ap);
    return s;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
    throw std::logic_error(strfmt("internal error at %s:%d: %s %s (this is a bug in lota; please report it)", file,
                                  line, cond, msg.c_str()));
}

}  // namespace lota
