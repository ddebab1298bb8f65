// LoTA-QAF and LoRA behind TrainMethod (train_method.h).
#include "train/train_method.h"

#include <ATen/ATen.h>

#include "adapter/lora_linear.h"
#include "adapter/lota_linear.h"
#include "quant/lota.h"
#include "util/check.h"

namespace lota::train {
namespace {

using adapter::AdaptedLayer;

class LotaTrainMethod : public TrainMethod {
  public:
    void config_fill(io::AdapterConfig& c, const TrainOptions& o, int64_t total_steps) const override {
        const TSignSgdOptions& t = o.tsign;
        c.lora_dropout = 0.0;
        c.lota_extra = {{"optimizer", "t-signsgd"},
                        {"schedule", t.schedule == TSignSchedule::OFFICIAL_INTERPOLATE ? "official" : "paper"},
                        {"q_start", t.q_start},
                        {"q_mid", t.q_mid},
                        {"q_end", t.q_end},
                        {"phase1_frac", t.phase1_frac},
                        {"tau", t.tau},
                        {"guard_norm", t.guard_norm},
                        {"guard_quantile", t.guard_quantile},
                        {"total_steps", total_steps}};
    }

    io::AdapterModule module_initial(const io::AdapterTarget& target, int64_t r, at::Generator& gen) const override {
        return {quant::lota_init_a(r, target.in_features, gen), quant::lota_init_b(target.out_features, r)};
    }

    std::unique_ptr<Optimizer> optimizer_make(const std::vector<AdaptedLayer>& layers,
                                              const TrainOptions& o) const override {
        std::vector<TSignSgdParam> params;
        for (const AdaptedLayer& l : layers) {
            LOTA_ASSERT(l.lota != nullptr, "layer %s has no LoTA adapter", l.name.c_str());
            params.push_back({l.lota->lora_a(), l.lota->grad_a()});
            params.push_back({l.lota->lora_b(), l.lota->grad_b()});
        }
        return std::make_unique<TSignSgdOptimizer>(std::move(params), o.tsign);
    }

    std::optional<at::Generator> step_begin(const std::vector<AdaptedLayer>&, const at::Device&, uint64_t,
                                            int64_t) const override {
        return std::nullopt;  // nothing random within a step
    }

    // Markers of both signs and the mean |F| over every layer's merged weights, kept by each layer
    // since its last re-merge (LotaLinear::merged_stats: #(M = +1), #(M = −1), Σ|F|).
    StepStats step_stats(const std::vector<AdaptedLayer>& layers) const override {
        std::vector<at::Tensor> per_layer;
        int64_t offsets = 0;
        for (const AdaptedLayer& l : layers) {
            per_layer.push_back(l.lota->merged_stats());
            offsets += l.lota->n_groups() * l.lota->out_features();  // F is [G, N]
        }
        const at::Tensor sums = per_layer.empty() ? at::zeros({3}, at::kDouble) : at::stack(per_layer).sum(0);
        StepStats s;
        s.add_device("markers_pos", sums[0], StatKind::COUNT);
        s.add_device("markers_neg", sums[1], StatKind::COUNT);
        s.add_device("mean_abs_offset", sums[2], StatKind::REAL, offsets > 0 ? (double)offsets : 1.0);
        return s;
    }
};

class LoraTrainMethod : public TrainMethod {
  public:
    void config_fill(io::AdapterConfig& c, const TrainOptions& o, int64_t) const override {
        c.lora_dropout = o.lora_dropout;
    }

    io::AdapterModule module_initial(const io::AdapterTarget& target, int64_t r, at::Generator& gen) const override {
        return {adapter::lora_init_a(r, target.in_features, gen), at::zeros({target.out_features, r}, at::kFloat)};
    }

    std::unique_ptr<Optimizer> optimizer_make(const std::vector<AdaptedLayer>& layers,
                                              const TrainOptions& o) const override {
        std::vector<std::pair<std::string, at::Tensor>> params;
        for (const AdaptedLayer& l : layers) {
            LOTA_ASSERT(l.lora != nullptr, "layer %s has no LoRA adapter", l.name.c_str());
            params.emplace_back(l.name + ".lora_A.weight", l.lora->lora_a());
            params.emplace_back(l.name + ".lora_B.weight", l.lora->lora_b());
        }
        return std::make_unique<AdamWOptimizer>(std::move(params), o.adamw);
    }

    std::optional<at::Generator> step_begin(const std::vector<AdaptedLayer>& layers, const at::Device& device,
                                            uint64_t seed, int64_t step) const override {
        // On the model's device, so masks are drawn where the activations are (a CPU-drawn mask
        // copied to the GPU made an 8B step ~60x slower).
        const at::Generator gen = adapter::lora_dropout_generator(device, seed * 7919ULL + (uint64_t)step);
        for (const AdaptedLayer& l : layers) l.lora->set_generator(gen);
        return gen;
    }

    StepStats step_stats(const std::vector<AdaptedLayer>&) const override { return {}; }
};

}  // namespace

std::unique_ptr<TrainMethod> train_method_make(io::AdapterMethod method) {
    switch (method) {
        case io::AdapterMethod::LOTA: return std::make_unique<LotaTrainMethod>();
        case io::AdapterMethod::LORA: return std::make_unique<LoraTrainMethod>();
    }
    LOTA_FAIL("no training for adapter method %d", static_cast<int>(method));
}

}  // namespace lota::train
