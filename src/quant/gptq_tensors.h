// Conversion between a linear's tensors as stored in a GPTQ checkpoint (io/gptq_checkpoint.h,
// v1 or v2 qzeros) and the in-memory QuantizedWeight (exact, unpacked zero points).
#pragma once

#include <string>

#include "io/gptq_checkpoint.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"

namespace lota::quant {

/// Stored tensors, as io::gptq_linear_read returns them (validated there) -> QuantizedWeight:
/// qzeros converted v1 -> v2 (when the config's checkpoint_format is "gptq": whole word for 2/4/8
/// bits, for 3 bits as c.qzeros_3bit says, note [qzeros v1 and v2] in quant/pack.h) and unpacked.
/// A 3-bit v1 file that does not say (UNSTATED) is decided from the data: where both readings give
/// the same zero points nothing depends on it; a symmetric file is read the way that gives the
/// symmetric zero 4 everywhere (neither: an error naming `prefix`); an asymmetric one per field
/// (AutoGPTQ's and GPTQModel's convention), with a warning. Takes the tensors as valid.
QuantizedWeight quantized_weight_from_gptq(const io::GptqLinearTensors& t, const io::GptqConfig& c,
                                          const std::string& prefix = "");

/// QuantizedWeight -> tensors to store, in `checkpoint_format` ("gptq" = v1, or "gptq_v2"), on the
/// CPU. 3-bit v1 zero points are packed per field (io::Qzeros3Bit::PER_FIELD), the rest whole word.
io::GptqLinearTensors gptq_tensors_from_quantized_weight(const QuantizedWeight& qw,
                                                         const std::string& checkpoint_format = "gptq");

/// The checkpoint's quantization config for codes made by `method` ("gptq" or "rtn") with `opts`:
/// bits, group size, sym, desc_act = act-order, and GPTQModel's other keys (damp_percent,
/// static_groups, true_sequential, lm_head false, meta.method). What `lota quantize` and
/// `lota init --bits` record.
io::GptqConfig gptq_config_of(const QuantOptions& opts, const std::string& method);

}  // namespace lota::quant
