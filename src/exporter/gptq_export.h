// GPTQ or LoTA-merged model -> a plain GPTQ v1 checkpoint (integer zero points, no LoTA offsets) that
// GPTQModel and transformers load as written.
#pragma once

#include <cstdint>

#include "exporter/export_options.h"

namespace lota::exporter {

struct GptqExportReport {
    int64_t linears = 0, offsets_rounded = 0;  ///< linears written; those whose offsets F were folded into Z
    int64_t clamped = 0;                       ///< zero points Z − F rounded outside [0, maxq] and clamped
    double max_error_steps = 0;                ///< largest |round(Z − F) − (Z − F)| (grid steps) over all groups
};

/// Writes `o.out` (staged; an existing one only with `o.overwrite`) as a GPTQ v1 checkpoint of `o.model`
/// (GPTQ or LoTA-merged): zero points Z − F rounded to the nearest integer in [0, maxq] and no lota_offset
/// tensors. Offsets F that are not all integers are refused unless `o.allow_lossy`; the error is then
/// |round(Z − F) − (Z − F)| grid steps per weight of the group.
GptqExportReport gptq_export(const ExportOptions& o);

}  // namespace lota::exporter
