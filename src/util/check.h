// Error handling for lota. Library code never exits or prints errors: it throws lota::Error.
// LOTA_CHECK is for bad user input or data ("expected X, got Y", naming the file/tensor/key);
// LOTA_ASSERT is for broken internal invariants (a bug in lota).
#pragma once

#include <stdexcept>
#include <string>

#include "util/strfmt.h"

namespace lota {

/// Any error caused by user input, a file, or the environment. The message is complete and
/// is printed as is by the CLI.
class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace lota

/// Throws lota::Error with a printf-style message when `cond` is false.
#define LOTA_CHECK(cond, ...)                                \
    do {                                                     \
        if (!(cond)) throw ::lota::Error(::lota::strfmt(__VA_ARGS__)); \
    } while (0)

/// Throws lota::Error(msg) unconditionally.
#define LOTA_FAIL(...) throw ::lota::Error(::lota::strfmt(__VA_ARGS__))

/// Internal invariant; failure means a bug in lota (file:line and condition are reported).
#define LOTA_ASSERT(cond, ...)                                                               \
    do {                                                                                     \
        if (!(cond)) ::lota::throw_internal(__FILE__, __LINE__, #cond, ::lota::strfmt(" " __VA_ARGS__)); \
    } while (0)
