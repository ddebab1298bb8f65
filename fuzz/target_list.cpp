// The table of fuzz targets (targets.h), for the regression test that replays kept inputs.
#include "targets.h"

namespace lota::fuzz {

const FuzzTarget* fuzz_targets(size_t* count) {
    static const FuzzTarget targets[] = {
        {"safetensors", fuzz_safetensors}, {"gguf", fuzz_gguf},     {"tokenizer", fuzz_tokenizer},
        {"jinja", fuzz_jinja},             {"config", fuzz_config}, {"dataset", fuzz_dataset},
    };
    *count = sizeof(targets) / sizeof(targets[0]);
    return targets;
}

}  // namespace lota::fuzz
