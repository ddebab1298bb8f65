// Puts adapters onto a loaded model::Transformer: replaces the targeted QuantLinears by
// LotaLinear (LoTA-QAF), LoraLinear (16-bit LoRA) or QaLoraLinear (QA-LoRA) and collects them back
// into an io::Adapter for saving. Shared by training, `lota merge --verify` and `lota logits --adapter`.
// Not here: reading/writing files (io/adapter.h) and the optimizers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/adapter.h"
#include "adapter/lota_linear.h"
#include "model/transformer.h"
#include "adapter/lora_linear.h"
#include "adapter/qalora_linear.h"

namespace lota::adapter {

/// The adaptable linears of `model` (every block, every slot whose short name is in `short_names`;
/// all seven when empty), in block then model::PROJECTION_SLOTS order. Throws on an unknown short name.
std::vector<io::AdapterTarget> adapter_targets(model::Transformer& model, const std::vector<std::string>& short_names);

/// bits and group size of the model's quantized linears; throws when the model has none.
std::pair<int, int> model_quant_format(model::Transformer& model);

/// One adapted layer.
struct AdaptedLayer {
    std::string name;                             ///< module prefix
    std::shared_ptr<adapter::LotaLinear> lota;      ///< set for LoTA
    std::shared_ptr<LoraLinear> lora;             ///< set for LoRA
    std::shared_ptr<QaLoraLinear> qalora;         ///< set for QA-LoRA
};

/// Checks `adapter` against the model (io::adapter_check) and replaces each adapted module in
/// place. LoTA and QA-LoRA need a quantized module (QuantLinear; QA-LoRA: group-wise, no act-order);
/// LoRA wraps any module. Adapter tensors are copied to the model's device.
std::vector<AdaptedLayer> adapter_apply(model::Transformer& model, const io::Adapter& adapter,
                                        const std::string& what);

/// The current adapter tensors (CPU; LoRA in `lora_dtype`; QA-LoRA always float32, its training
/// precision, so that merging the saved adapter gives the model that was trained) with `config`.
io::Adapter adapter_collect(const std::vector<AdaptedLayer>& layers, const io::AdapterConfig& config,
                            at::ScalarType lora_dtype);

}  // namespace lota::adapter
