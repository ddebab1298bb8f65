// Fuzz targets for the tensor file readers in src/io: safetensors and GGUF (with the tokenizer
// rebuilt from GGUF metadata). These readers use ATen types, so their harnesses link LibTorch.
// See targets.h.
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"
#include "io/safetensors.h"
#include "mem_file.h"
#include "targets.h"
#include "util/check.h"

namespace lota::fuzz {

void fuzz_safetensors(const uint8_t* data, size_t size) {
    MemFile file(data, size);
    try {
        io::SafetensorsFile st(file.path());
        for (const auto& e : st.entries()) st.load(e.name);
    } catch (const lota::Error&) {
    }
}

void fuzz_gguf(const uint8_t* data, size_t size) {
    MemFile file(data, size);
    try {
        io::GgufFile g(file.path());
        for (const auto& t : g.tensors()) g.tensor_data(t);
        if (g.has("tokenizer.ggml.tokens")) {
            io::gguf_tokenizer_build(g, 4096);
            io::gguf_special_tokens(g, 1 << 20);
        }
    } catch (const lota::Error&) {
    }
}

}  // namespace lota::fuzz
