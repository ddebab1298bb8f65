// HF model directory (16-bit, GPTQ or LoTA-merged) -> a dense HF directory in bf16 or f16 that
// transformers (and engines that read HF checkpoints) load with no GPTQ support: every quantized linear
// dequantized to W = S·(Q − Z + F) in float32 and rounded once to the output dtype.
#pragma once

#include <cstdint>

#include "exporter/export_options.h"

namespace lota::exporter {

struct HfExportReport {
    int64_t dequantized = 0, dense = 0;
    double max_abs_error = 0;    ///< largest |dtype(W) − W| over every tensor written
    double max_error_steps = 0;  ///< largest |dtype(W) − W| / S over the dequantized linears (grid steps)
};

/// Writes `o.out` (a directory, staged and renamed; an existing one only with `o.overwrite`) from `o.model`
/// in `o.dtype` ("bf16" or "f16"): config.json without quantization_config and with its dtype key set, the
/// weights, and the tokenizer and generation files.
HfExportReport hf_export(const ExportOptions& o);

}  // namespace lota::exporter
