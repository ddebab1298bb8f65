// libFuzzer entry point; each harness is this file compiled with LOTA_FUZZ_TARGET set to one
// function of targets.h (see fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "targets.h"

#ifndef LOTA_FUZZ_TARGET
#error "compile with -DLOTA_FUZZ_TARGET=<a function of targets.h>"
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Tokenizer warnings would flood the output; util/log reads the level once, from LOTA_LOG.
    ::setenv("LOTA_LOG", "error", 0);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lota::fuzz::LOTA_FUZZ_TARGET(data, size);
    return 0;
}
