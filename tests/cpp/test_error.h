// The message of the lota::Error a call throws, for tests that assert on error wording.
#pragma once

#include <string>

#include "util/check.h"

namespace lota_test {

/// Runs `f` and returns the lota::Error message ("" when nothing was thrown).
template <class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const lota::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace lota_test
