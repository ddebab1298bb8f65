// libFuzzer entry point; each harness is this file compiled with LOTA_FUZZ_TARGET set to one
// function of targets.h (see fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "targets.h"
#include "util/log.h"

#ifndef LOTA_FUZZ_TARGET
#error "compile with -DLOTA_FUZZ_TARGET=<a function of targets.h>"
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    lota::log_set_level(lota::LogLevel::ERROR);  // tokenizer warnings would flood the output
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lota::fuzz::LOTA_FUZZ_TARGET(data, size);
    return 0;
}
