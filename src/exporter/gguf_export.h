// HF model directory (16-bit, GPTQ or LoTA-merged; llama, mistral, qwen2, qwen3) -> one GGUF file for
// llama.cpp: quantized linears as Q4_1 blocks with d = S, m = S·(F − Z) (codes unchanged), the rest as
// stored (1-D tensors as F32), metadata and tensor names as llama.cpp's convert_hf_to_gguf writes them.
#pragma once

#include <cstdint>

#include "exporter/export_options.h"

namespace lota::exporter {

struct GgufExportReport {
    int64_t q4_1 = 0, lossy_f16 = 0, dense = 0;  ///< tensors written as Q4_1, as lossy F16, as stored (or F32)
    double max_m_error_steps = 0;  ///< largest |fp16(m) − S·(F − Z)| / S over every Q4_1 block
    double max_lossy_error = 0;    ///< largest |fp16(W) − W| over tensors written lossy
};

/// Writes `o.out` (a temporary sibling renamed at the end; an existing file only with `o.overwrite`) from
/// `o.model`. Throws naming the file or tensor for unsupported rope scaling, tokenizers, dtypes, and
/// quantized linears Q4_1 cannot hold exactly unless `o.allow_lossy`.
GgufExportReport gguf_export(const ExportOptions& o);

}  // namespace lota::exporter
