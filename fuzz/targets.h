// Fuzz targets: one function per parser of user files, shared by the libFuzzer harnesses
// (fuzz/CMakeLists.txt, run by scripts/fuzz.sh) and the CPU test that replays kept inputs
// (tests/cpp/fuzz_regress). Each runs one input through a parser the way lota does; it returns
// or throws lota::Error. Anything else escaping (another exception type, a sanitizer report, a
// crash, a hang) is a bug.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lota::fuzz {

/// A .safetensors file: header validation, then every tensor copied out.
void fuzz_safetensors(const uint8_t* data, size_t size);
/// A .gguf file: header, metadata and tensor table, then the tokenizer rebuilt from the metadata.
void fuzz_gguf(const uint8_t* data, size_t size);
/// tokenizer.json [NUL tokenizer_config.json]: loading, then encoding and decoding sample text.
void fuzz_tokenizer(const uint8_t* data, size_t size);
/// A chat template [NUL messages JSON]: parsing and rendering.
void fuzz_jinja(const uint8_t* data, size_t size);
/// config.json, also read as a token-id file.
void fuzz_config(const uint8_t* data, size_t size);
/// A dataset file; the first byte picks the format (alpaca, gsm8k, chat, viggo), the rest is the file.
void fuzz_dataset(const uint8_t* data, size_t size);

struct FuzzTarget {
    const char* name;  ///< also the folder of its kept inputs under tests/fuzz_regress/
    void (*run)(const uint8_t* data, size_t size);
};

/// Every target, for the regression test (target_list.cpp).
const FuzzTarget* fuzz_targets(size_t* count);

}  // namespace lota::fuzz
