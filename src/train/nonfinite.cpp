// Locating the first non-finite tensor of a training step (see nonfinite.h).
#include "train/nonfinite.h"

#include <ATen/ATen.h>

#include "model/nonfinite.h"

namespace lota::train {
namespace {

bool finite(const at::Tensor& t) {
    return !t.defined() || !at::isFloatingType(t.scalar_type()) || at::isfinite(t).all().item<bool>();
}

}  // namespace

std::string nonfinite_find(model::Transformer& model, const std::vector<adapter::AdaptedLayer>& layers,
                           const data::Batch& batch) {
    for (const adapter::AdaptedLayer& l : layers) {
        const at::Tensor a = l.lora ? l.lora->lora_a() : l.lota->lora_a();
        const at::Tensor b = l.lora ? l.lora->lora_b() : l.lota->lora_b();
        if (!finite(a)) return l.name + " lora_A (adapter weights after the update)";
        if (!finite(b)) return l.name + " lora_B (adapter weights after the update)";
    }
    return model::nonfinite_find_forward(model, batch.ids, batch.mask);
}

}  // namespace lota::train
