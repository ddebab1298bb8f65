// What `lota export` is asked to do, shared by its three targets: GGUF for llama.cpp (gguf_export.h),
// a dense HF directory (hf_export.h) and a GPTQ v1 checkpoint (gptq_export.h). Each target reads the
// fields it needs; the CLI picks the target.
#pragma once

#include <string>

namespace lota::exporter {

struct ExportOptions {
    std::string model;            ///< input HF model directory: 16-bit, GPTQ or LoTA-merged
    std::string out;              ///< the .gguf file, or the output directory (hf, gptq)
    std::string dtype = "bf16";   ///< hf: dtype of the written weights, bf16 | f16
    bool allow_lossy = false;     ///< gguf: write linears Q4_1 cannot hold as F16; gptq: round Z − F
    bool overwrite = false;       ///< replace an existing `out` (only once the new one is complete)
};

}  // namespace lota::exporter
