// lota export --format hf and --format gptq, the HF-directory targets of `lota export`:
// - hf: an HF model directory (16-bit, GPTQ or LoTA-merged) -> a dense HF directory in bf16 or f16 that
//   transformers (and engines that read HF checkpoints) load with no GPTQ support: every quantized linear
//   dequantized to W = S·(Q − Z + F) in float32 and rounded once to the output dtype;
// - gptq: a GPTQ or LoTA-merged model -> a plain GPTQ v1 checkpoint (integer zero points, no offsets).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lota::cli {

struct HfExportReport {
    int64_t dequantized = 0, dense = 0;
    double max_abs_error = 0;    ///< largest |dtype(W) − W| over every tensor written
    double max_error_steps = 0;  ///< largest |dtype(W) − W| / S over the dequantized linears (grid steps)
};

/// Writes OUT (a directory, staged and renamed; an existing one only with `overwrite`) from MODEL in
/// `dtype` ("bf16" or "f16"): config.json without quantization_config and with its dtype key set, the
/// weights, and the tokenizer and generation files.
HfExportReport hf_export(const std::string& model, const std::string& out, const std::string& dtype, bool overwrite);

}  // namespace lota::cli

namespace lota::cli {

struct GptqExportReport {
    int64_t linears = 0, offsets_rounded = 0;  ///< linears written; those whose offsets F were folded into Z
    int64_t clamped = 0;                       ///< zero points Z − F rounded outside [0, maxq] and clamped
    double max_error_steps = 0;                ///< largest |round(Z − F) − (Z − F)| (grid steps) over all groups
};

/// Writes OUT (staged; an existing one only with `overwrite`) as a GPTQ v1 checkpoint of MODEL (GPTQ or
/// LoTA-merged) that GPTQModel and transformers load as written: zero points Z − F rounded to the nearest
/// integer in [0, maxq] and no lota_offset tensors. Offsets F that are not all integers are refused unless
/// `allow_lossy`; the error is then |round(Z − F) − (Z − F)| grid steps per weight of the group.
GptqExportReport gptq_export(const std::string& model, const std::string& out, bool allow_lossy, bool overwrite);

}  // namespace lota::cli
