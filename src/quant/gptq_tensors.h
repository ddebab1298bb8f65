// Conversion between a linear's tensors as stored in a GPTQ checkpoint (io/gptq_checkpoint.h,
// v1 or v2 qzeros) and the in-memory QuantizedWeight (exact, unpacked zero points).
#pragma once

#include <string>

#include "io/gptq_checkpoint.h"
#include "quant/quantized_weight.h"

namespace lota::quant {

/// Stored tensors, as io::gptq_linear_read returns them (validated there) -> QuantizedWeight:
/// qzeros converted v1 -> v2 by whole-word arithmetic (when the config's checkpoint_format is
/// "gptq") and unpacked. Takes the tensors as valid; it does not check them again.
QuantizedWeight quantized_weight_from_gptq(const io::GptqLinearTensors& t, const io::GptqConfig& c);

/// QuantizedWeight -> tensors to store, in `checkpoint_format` ("gptq" = v1, or "gptq_v2"), on the CPU.
io::GptqLinearTensors gptq_tensors_from_quantized_weight(const QuantizedWeight& qw,
                                                         const std::string& checkpoint_format = "gptq");

}  // namespace lota::quant
