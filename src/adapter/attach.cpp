// Adapter placement on a Transformer (attach.h).
#include "adapter/attach.h"

#include <map>
#include <set>

#include <ATen/ATen.h>

#include "model/arch.h"
#include "model/quant_linear.h"
#include "quant/qalora.h"
#include "util/check.h"

namespace lota::adapter {

std::vector<io::AdapterTarget> adapter_targets(model::Transformer& model, const std::vector<std::string>& short_names) {
    LOTA_CHECK(!model.fused(), "adapters attach to separate q/k/v/gate/up layers; this model's were fused for "
               "inference (Transformer::fuse_projections): load it again");
    const std::set<std::string> wanted(short_names.begin(), short_names.end());
    for (const auto& n : wanted)
        LOTA_CHECK(model::slot_from_short_name(n).has_value(), "unknown target module '%s' (expected one of %s)",
                   n.c_str(), model::slot_short_names().c_str());
    std::vector<io::AdapterTarget> out;
    for (int64_t l = 0; l < (int64_t)model.blocks().size(); ++l)
        for (model::Slot s : model::PROJECTION_SLOTS) {
            if (!wanted.empty() && !wanted.count(model::slot_info(s).short_name)) continue;
            const auto& lin = model.blocks()[l].linear(s);
            out.push_back({model::name_linear(l, s), lin->in_features(), lin->out_features()});
        }
    return out;
}

std::pair<int, int> model_quant_format(model::Transformer& model) {
    for (auto& b : model.blocks())
        for (model::Slot s : model::PROJECTION_SLOTS)
            if (auto q = std::dynamic_pointer_cast<model::QuantLinear>(b.linear(s)))
                return {q->weight().bits, q->weight().group_size};
    LOTA_FAIL("the model has no quantized linear layers (run `lota quantize` first)");
}

std::vector<AdaptedLayer> adapter_apply(model::Transformer& model, const io::Adapter& adapter, const std::string& what) {
    const auto [bits, group_size] = model_quant_format(model);
    io::adapter_check(adapter, adapter_targets(model, {}), bits, group_size, what);
    const io::AdapterMethod method = adapter.config.method;
    const double scaling = adapter.config.lora_alpha / (double)adapter.config.r;
    auto buffer = std::make_shared<model::DequantBuffer>();
    std::vector<AdaptedLayer> out;
    for (int64_t l = 0; l < (int64_t)model.blocks().size(); ++l)
        for (model::Slot s : model::PROJECTION_SLOTS) {
            const std::string name = model::name_linear(l, s);
            auto it = adapter.modules.find(name);
            if (it == adapter.modules.end()) continue;
            model::LinearPtr& slot = model.blocks()[l].linear(s);
            AdaptedLayer layer;
            layer.name = name;
            if (method == io::AdapterMethod::QALORA) {
                auto q = std::dynamic_pointer_cast<model::QuantLinear>(slot);
                LOTA_CHECK(q != nullptr, "%s: module '%s' is not quantized (%s); QA-LoRA needs a GPTQ layer",
                           what.c_str(), name.c_str(), slot->kind().c_str());
                const at::Device dev = q->weight().qweight.device();
                layer.qalora = std::make_shared<QaLoraLinear>(
                    q->weight(), it->second.lora_a.to(dev), it->second.lora_b.to(dev), scaling,
                    quant::qalora_pooling_parse(adapter.config.qalora_pooling, what + ": qalora.pooling"), buffer);
                slot = layer.qalora;
            } else if (method == io::AdapterMethod::LOTA) {
                auto q = std::dynamic_pointer_cast<model::QuantLinear>(slot);
                LOTA_CHECK(q != nullptr, "%s: module '%s' is not quantized (%s); LoTA-QAF needs a GPTQ layer",
                           what.c_str(), name.c_str(), slot->kind().c_str());
                // The LotaLinear takes over the base codes; nothing else keeps them (no second copy).
                const at::Device dev = q->weight().qweight.device();
                layer.lota = std::make_shared<adapter::LotaLinear>(q->weight(),
                                                                 it->second.lora_a.to(dev, at::kChar).clone(),
                                                                 it->second.lora_b.to(dev, at::kChar).clone(),
                                                                 adapter.config.omega, buffer);
                slot = layer.lota;
            } else {
                layer.lora = std::make_shared<LoraLinear>(slot, it->second.lora_a.to(model.device()),
                                                          it->second.lora_b.to(model.device()), scaling,
                                                          adapter.config.lora_dropout);
                slot = layer.lora;
            }
            out.push_back(std::move(layer));
        }
    return out;
}

io::Adapter adapter_collect(const std::vector<AdaptedLayer>& layers, const io::AdapterConfig& config,
                            at::ScalarType lora_dtype) {
    io::Adapter a;
    a.config = config;
    for (const auto& l : layers) {
        io::AdapterModule m;
        if (l.lota) {
            m.lora_a = l.lota->lora_a().cpu().clone();
            m.lora_b = l.lota->lora_b().cpu().clone();
        } else if (l.qalora) {
            m.lora_a = l.qalora->lora_a().detach().to(at::kCPU, at::kFloat).clone();
            m.lora_b = l.qalora->lora_b().detach().to(at::kCPU, at::kFloat).clone();
        } else {
            m.lora_a = l.lora->lora_a().detach().to(at::kCPU, lora_dtype).clone();
            m.lora_b = l.lora->lora_b().detach().to(at::kCPU, lora_dtype).clone();
        }
        a.modules[l.name] = m;
    }
    return a;
}

}  // namespace lota::adapter
