// LoTA-QAF, LoRA and QA-LoRA behind TrainMethod (train_method.h).
#include "train/train_method.h"

#include <cmath>

#include <ATen/ATen.h>

#include "adapter/lora_linear.h"
#include "adapter/lota_linear.h"
#include "quant/lota.h"
#include "quant/qalora.h"
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
                        {"momentum", t.momentum},
                        {"total_steps", total_steps}};
    }

    io::AdapterModule module_initial(const io::AdapterTarget& target, const io::AdapterConfig& c,
                                     at::Generator& gen) const override {
        return {quant::lota_init_a(c.r, target.in_features, gen), quant::lota_init_b(target.out_features, c.r)};
    }

    std::unique_ptr<Optimizer> optimizer_make(const std::vector<AdaptedLayer>& layers,
                                              const TrainOptions& o) const override {
        std::vector<TSignSgdParam> params;
        std::vector<std::string> names;
        for (const AdaptedLayer& l : layers) {
            LOTA_ASSERT(l.lota != nullptr, "layer %s has no LoTA adapter", l.name.c_str());
            params.push_back({l.lota->lora_a(), l.lota->grad_a()});
            params.push_back({l.lota->lora_b(), l.lota->grad_b()});
            names.push_back(l.name + ".lora_A.weight");
            names.push_back(l.name + ".lora_B.weight");
        }
        return std::make_unique<TSignSgdOptimizer>(std::move(params), o.tsign, std::move(names));
    }

    std::optional<at::Generator> micro_batch_begin(const std::vector<AdaptedLayer>&, const at::Device&, uint64_t,
                                                   int64_t, int64_t) const override {
        return std::nullopt;  // nothing random within a step
    }

    std::vector<GradReducer::Entry> grad_entries(const std::vector<AdaptedLayer>& layers) const override {
        std::vector<GradReducer::Entry> e;
        for (auto l = layers.rbegin(); l != layers.rend(); ++l) {
            e.push_back({l->lota->grad_a(), {}});
            e.push_back({l->lota->grad_b(), {}});
        }
        return e;
    }

    void grad_hooks(const std::vector<AdaptedLayer>& layers, GradReducer& reducer) const override {
        for (size_t k = 0; k < layers.size(); ++k) {
            const size_t i = 2 * (layers.size() - 1 - k);  // grad_entries' numbering
            auto hook = c10::make_intrusive<adapter::GradReadyHook>();
            hook->fn = [&reducer, i] { reducer.ready(i, i + 1); };
            layers[k].lota->set_grad_ready_hook(reducer.needed() ? hook : nullptr);
        }
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

/// AdamW named parameters "<module>.lora_A.weight", "<module>.lora_B.weight" of every layer, in order.
std::vector<std::pair<std::string, at::Tensor>> named_factors(const std::vector<AdaptedLayer>& layers, bool qalora) {
    std::vector<std::pair<std::string, at::Tensor>> params;
    for (const AdaptedLayer& l : layers) {
        LOTA_ASSERT(qalora ? l.qalora != nullptr : l.lora != nullptr, "layer %s has no %s adapter", l.name.c_str(),
                    qalora ? "QA-LoRA" : "LoRA");
        params.emplace_back(l.name + ".lora_A.weight", qalora ? l.qalora->lora_a() : l.lora->lora_a());
        params.emplace_back(l.name + ".lora_B.weight", qalora ? l.qalora->lora_b() : l.lora->lora_b());
    }
    return params;
}

class LoraTrainMethod : public TrainMethod {
  public:
    void config_fill(io::AdapterConfig& c, const TrainOptions& o, int64_t) const override {
        c.lora_dropout = o.lora_dropout;
    }

    io::AdapterModule module_initial(const io::AdapterTarget& target, const io::AdapterConfig& c,
                                     at::Generator& gen) const override {
        return {adapter::lora_init_a(c.r, target.in_features, gen), at::zeros({target.out_features, c.r}, at::kFloat)};
    }

    std::unique_ptr<Optimizer> optimizer_make(const std::vector<AdaptedLayer>& layers,
                                              const TrainOptions& o) const override {
        return std::make_unique<AdamWOptimizer>(named_factors(layers, false), o.adamw);
    }

    std::optional<at::Generator> micro_batch_begin(const std::vector<AdaptedLayer>& layers, const at::Device& device,
                                                   uint64_t seed, int64_t step, int64_t micro) const override {
        // On the model's device, so masks are drawn where the activations are (a CPU-drawn mask
        // copied to the GPU made an 8B step ~60x slower). One generator per micro-batch, so the
        // masks do not depend on which rank runs the micro-batch or on the ones before it.
        const uint64_t s = (seed * 7919ULL + (uint64_t)step) * 1000003ULL + (uint64_t)micro;
        const at::Generator gen = adapter::lora_dropout_generator(device, s);
        for (const AdaptedLayer& l : layers) l.lora->set_generator(gen);
        return gen;
    }

    std::vector<GradReducer::Entry> grad_entries(const std::vector<AdaptedLayer>& layers) const override {
        std::vector<GradReducer::Entry> e;
        for (auto l = layers.rbegin(); l != layers.rend(); ++l) {
            e.push_back({{}, l->lora->lora_a()});
            e.push_back({{}, l->lora->lora_b()});
        }
        return e;
    }

    void grad_hooks(const std::vector<AdaptedLayer>&, GradReducer&) const override {}  // autograd's .grad

    StepStats step_stats(const std::vector<AdaptedLayer>&) const override { return {}; }
};

// QA-LoRA (Xu et al. 2024): AdamW on float32 factors like LoRA, A on the group-pooled input, no dropout
// (the layer's forward is its merged quantized layer, adapter/qalora_linear.h).
class QaLoraTrainMethod : public TrainMethod {
  public:
    void config_fill(io::AdapterConfig& c, const TrainOptions& o, int64_t) const override {
        LOTA_CHECK(c.group_size > 0,
                   "%s: QA-LoRA needs a group-wise quantized model (group size 32, 64, 128...); this one is quantized "
                   "per output channel (group size %d)", o.model.c_str(), c.group_size);
        c.lora_dropout = 0.0;
        c.qalora_pooling = quant::qalora_pooling_name(quant::qalora_pooling_parse(o.qalora_pooling, "qalora pooling"));
    }

    // The official code's init (peft_utils.py, reset_lora_parameters): A xavier-uniform, i.e.
    // U(−√(6/(fan_in + fan_out)), +√(6/(fan_in + fan_out))) with fan_in = K/g and fan_out = r; B zeros.
    io::AdapterModule module_initial(const io::AdapterTarget& target, const io::AdapterConfig& c,
                                     at::Generator& gen) const override {
        LOTA_CHECK(c.group_size > 0 && target.in_features % c.group_size == 0,
                   "QA-LoRA: module %s has %lld inputs, not a multiple of the group size %d", target.name.c_str(),
                   (long long)target.in_features, c.group_size);
        const int64_t G = target.in_features / c.group_size;
        const double bound = std::sqrt(6.0 / (double)(G + c.r));
        return {at::empty({c.r, G}, at::kFloat).uniform_(-bound, bound, gen),
                at::zeros({target.out_features, c.r}, at::kFloat)};
    }

    std::unique_ptr<Optimizer> optimizer_make(const std::vector<AdaptedLayer>& layers,
                                              const TrainOptions& o) const override {
        return std::make_unique<AdamWOptimizer>(named_factors(layers, true), o.adamw);
    }

    std::optional<at::Generator> micro_batch_begin(const std::vector<AdaptedLayer>&, const at::Device&, uint64_t,
                                                   int64_t, int64_t) const override {
        return std::nullopt;  // no dropout: nothing random within a step
    }

    std::vector<GradReducer::Entry> grad_entries(const std::vector<AdaptedLayer>& layers) const override {
        std::vector<GradReducer::Entry> e;
        for (auto l = layers.rbegin(); l != layers.rend(); ++l) {
            e.push_back({{}, l->qalora->lora_a()});
            e.push_back({{}, l->qalora->lora_b()});
        }
        return e;
    }

    void grad_hooks(const std::vector<AdaptedLayer>&, GradReducer&) const override {}  // autograd's .grad

    // Mean |F| (grid steps) of the offsets the step's forward used, over every layer's [G, N].
    StepStats step_stats(const std::vector<AdaptedLayer>& layers) const override {
        std::vector<at::Tensor> per_layer;
        int64_t offsets = 0;
        for (const AdaptedLayer& l : layers) {
            per_layer.push_back(l.qalora->offset_abs_sum());
            offsets += l.qalora->n_groups() * l.qalora->out_features();
        }
        StepStats s;
        if (!per_layer.empty())
            s.add_device("mean_abs_offset", at::stack(per_layer).sum(), StatKind::REAL,
                         offsets > 0 ? (double)offsets : 1.0);
        return s;
    }
};

}  // namespace

std::unique_ptr<TrainMethod> train_method_make(io::AdapterMethod method) {
    switch (method) {
        case io::AdapterMethod::LOTA: return std::make_unique<LotaTrainMethod>();
        case io::AdapterMethod::LORA: return std::make_unique<LoraTrainMethod>();
        case io::AdapterMethod::QALORA: return std::make_unique<QaLoraTrainMethod>();
    }
    LOTA_FAIL("no training for adapter method %d", static_cast<int>(method));
}

}  // namespace lota::train
