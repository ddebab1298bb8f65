// The fine-tuning loop (trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "kernels/device_memory.h"
#include "model/arch.h"
#include "model/prompt.h"
#include "model/transformer.h"
#include "quant/lota.h"
#include "adapter/attach.h"
#include "train/block_checkpoint.h"
#include "train/checkpoint.h"
#include "train/lm_loss.h"
#include "adapter/lora_linear.h"
#include "train/train_log.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::train {
namespace {

using Clock = std::chrono::steady_clock;

io::AdapterConfig adapter_config_make(const TrainOptions& o, int bits, int group_size, int64_t total_steps) {
    io::AdapterConfig c;
    c.method = o.method;
    c.r = o.rank;
    c.lora_alpha = o.lora_alpha > 0 ? o.lora_alpha : 2.0 * (double)o.rank;
    c.lora_dropout = o.method == "lora" ? o.lora_dropout : 0.0;
    c.base_model = o.model;
    if (o.target_modules.empty())
        for (const auto& s : model::linear_slots()) c.target_modules.push_back(s.short_name);
    else
        c.target_modules = o.target_modules;
    c.omega = o.omega > 0 ? o.omega : 0.75 * (double)o.rank;
    c.bits = bits;
    c.group_size = group_size;
    const TSignSgdOptions& t = o.tsign;
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
    return c;
}

/// Step-0 adapter: LoTA A = lota_init_a, B = 0; LoRA A = kaiming-uniform, B = 0. Drawn in module
/// order from one generator seeded with `seed`.
io::Adapter adapter_initial(model::Transformer& model, const io::AdapterConfig& c, uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    io::Adapter a;
    a.config = c;
    for (const auto& t : adapter::adapter_targets(model, c.target_modules)) {
        io::AdapterModule m;
        if (c.method == "lota") {
            m.lora_a = quant::lota_init_a(c.r, t.in_features, gen);
            m.lora_b = quant::lota_init_b(t.out_features, c.r);
        } else {
            m.lora_a = adapter::lora_init_a(c.r, t.in_features, gen);
            m.lora_b = at::zeros({t.out_features, c.r}, at::kFloat);
        }
        a.modules[t.name] = m;
    }
    return a;
}

std::vector<at::Tensor> lora_params(const std::vector<adapter::AdaptedLayer>& layers) {
    std::vector<at::Tensor> p;
    for (const auto& l : layers)
        if (l.lora) {
            p.push_back(l.lora->lora_a());
            p.push_back(l.lora->lora_b());
        }
    return p;
}

struct StepLoss {
    at::Tensor loss_sum;  ///< float64 scalar on the device: Σ token CE of the step (read back later)
    int64_t label_tokens = 0, tokens = 0;
};

/// Forward + backward of one optimizer step's examples in micro-batches; gradients accumulate.
/// No host sync: the loss stays on the device (a non-finite loss is caught after the step).
StepLoss step_forward_backward(model::Transformer& model, const std::vector<data::Example>& examples,
                               const std::vector<int64_t>& idx, int64_t micro, const TrainOptions& o,
                               const std::optional<at::Generator>& gen) {
    std::vector<data::Batch> batches;
    StepLoss r;
    for (size_t i = 0; i < idx.size(); i += (size_t)micro) {
        std::vector<const data::Example*> ex;
        for (size_t j = i; j < std::min(idx.size(), i + (size_t)micro); ++j) ex.push_back(&examples[idx[j]]);
        batches.push_back(data::batch_collate(ex));
        r.label_tokens += batches.back().n_label_tokens;
        r.tokens += batches.back().mask.sum().item<int64_t>();  // CPU tensor: no device sync
    }
    LOTA_CHECK(r.label_tokens > 0, "a training step has no target tokens (all targets truncated away?)");
    const at::Device dev = model.device();
    r.loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev));
    for (const data::Batch& b : batches) {
        const at::Tensor ids = b.ids.to(dev);
        // The CPU mask lets prepare() see "no padding" without a device readback.
        const at::Tensor h = o.gradient_checkpointing ? forward_hidden_checkpointed(model, ids, b.mask, gen)
                                                      : model.forward_hidden(ids, b.mask);
        const int64_t B = h.size(0), T = h.size(1);
        // Position t predicts token t + 1: targets are the labels shifted left, −100 after the last.
        const at::Tensor target =
            at::cat({b.labels.slice(1, 1, T), at::full({B, 1}, -100, b.labels.options())}, 1).reshape({-1}).to(dev);
        const at::Tensor hn = model.final_norm(h).reshape({B * T, -1});
        const at::Tensor loss = lm_loss_sum(hn, model.lm_head_weight(), target, o.loss_chunk_rows);
        r.loss_sum.add_(loss.detach().to(at::kDouble));
        (loss / (double)r.label_tokens).backward();
    }
    return r;
}

Checkpoint checkpoint_make(const std::vector<adapter::AdaptedLayer>& layers, const io::AdapterConfig& c, const AdamWState& adam,
                           const TrainOptions& o, int64_t total, int64_t position) {
    Checkpoint ck;
    ck.adapter = adapter::adapter_collect(layers, c, at::kFloat);
    for (size_t i = 0; i < adam.m.size(); ++i) {
        ck.optimizer["m." + std::to_string(i)] = adam.m[i].cpu();
        ck.optimizer["v." + std::to_string(i)] = adam.v[i].cpu();
    }
    ck.state = {{"total_steps", total},  {"data_position", position}, {"adamw_step", adam.step},
                {"seed", o.seed},         {"method", o.method},        {"batch_size", o.batch_size},
                {"rng", "derived from (seed, step) and (seed, epoch)"}};
    return ck;
}

}  // namespace

TrainResult train_run(const TrainOptions& o) {
    LOTA_CHECK(o.method == "lota" || o.method == "lora", "--method must be lota or lora, got '%s'", o.method.c_str());
    LOTA_CHECK(o.batch_size >= 1 && o.rank >= 1, "--batch-size and --rank must be >= 1");
    LOTA_CHECK(o.resume || dir_is_empty_or_missing(o.out),
               "%s: output directory exists and is not empty (use --resume to continue a run, or a new --out)",
               o.out.c_str());
    const bool cuda = o.device == "cuda";
    auto model = model::Transformer::load(o.model, {o.device, cuda ? "bf16" : "f32"});
    const model::PromptText text(o.model);
    const std::vector<data::Example> examples = data::data_load(o.data, text);
    const int64_t micro = o.micro_batch_size > 0 ? std::min(o.micro_batch_size, o.batch_size) : o.batch_size;
    const double epochs = o.epochs > 0 ? o.epochs : 1.0;
    const int64_t total =
        o.steps > 0 ? o.steps : std::max<int64_t>(1, (int64_t)std::ceil(epochs * (double)examples.size() / (double)o.batch_size));
    const auto [bits, group_size] = adapter::model_quant_format(*model);
    const io::AdapterConfig config = adapter_config_make(o, bits, group_size, total);

    std::filesystem::create_directories(o.out);
    const std::string log_path = o.out + "/train_log.jsonl";
    data::DataOrder order((int64_t)examples.size(), o.seed);
    AdamWState adam;
    int64_t start = 0;
    std::optional<Checkpoint> ck = o.resume ? checkpoint_load_latest(o.out) : std::nullopt;
    io::Adapter initial;
    if (ck) {
        const auto& st = ck->state;
        LOTA_CHECK(st.value("method", std::string()) == o.method && st.value("total_steps", (int64_t)0) == total &&
                       st.value("seed", (uint64_t)0) == o.seed && st.value("batch_size", (int64_t)0) == o.batch_size,
                   "%s: the checkpoint was made with different settings (method %s, %lld steps, seed %llu, batch %lld)",
                   o.out.c_str(), st.value("method", std::string("?")).c_str(),
                   (long long)st.value("total_steps", (int64_t)0), (unsigned long long)st.value("seed", (uint64_t)0),
                   (long long)st.value("batch_size", (int64_t)0));
        start = st.at("step").get<int64_t>();
        order.seek(st.at("data_position").get<int64_t>());
        initial = ck->adapter;
        initial.config = config;
        adam.step = st.value("adamw_step", (int64_t)0);
        for (size_t i = 0; ck->optimizer.count("m." + std::to_string(i)); ++i) {
            adam.m.push_back(ck->optimizer.at("m." + std::to_string(i)).to(model->device()));
            adam.v.push_back(ck->optimizer.at("v." + std::to_string(i)).to(model->device()));
        }
        train_log_truncate(log_path, start);
        LOTA_LOG_INFO("resuming %s from step %lld of %lld", o.out.c_str(), (long long)start, (long long)total);
    } else {
        if (o.resume) LOTA_LOG_WARN("%s: no checkpoint to resume from; starting at step 0", o.out.c_str());
        initial = adapter_initial(*model, config, o.seed);
        if (path_exists(log_path)) std::filesystem::remove(log_path);
    }
    const std::vector<adapter::AdaptedLayer> layers = adapter::adapter_apply(*model, initial, o.out);
    const std::vector<at::Tensor> lparams = lora_params(layers);
    LOTA_LOG_INFO("training %s: %zu adapted modules, r=%lld, %zu examples, %lld steps of %lld (micro-batch %lld)",
                  o.method.c_str(), layers.size(), (long long)config.r, examples.size(), (long long)total,
                  (long long)o.batch_size, (long long)micro);

    TrainResult res;
    Progress progress("train " + o.method, total, 0.0, start);
    for (int64_t step = start + 1; step <= total; ++step) {
        const auto t0 = Clock::now();
        std::optional<at::Generator> gen;
        if (o.method == "lora") {
            // On the model's device, so masks are drawn where the activations are (a CPU-drawn
            // mask copied to the GPU made an 8B step ~60x slower).
            gen = adapter::lora_dropout_generator(model->device(), o.seed * 7919ULL + (uint64_t)step);
            for (const auto& l : layers) l.lora->set_generator(gen);
        }
        const StepLoss sl = step_forward_backward(*model, examples, order.take(o.batch_size), micro, o, gen);
        nlohmann::json rec = {{"step", step}, {"target_tokens", sl.label_tokens}};
        // Everything the log needs comes back in one read at the end of the step (LoTA: the only host
        // sync of the step). A non-finite loss is reported after the optimizer step, before any write.
        std::vector<at::Tensor> values;
        values.reserve(3);
        values.push_back(sl.loss_sum.reshape({1}));
        if (o.method == "lota") {
            values.push_back(lota_stats_device(layers));  // of the adapter this step's forward used
            std::vector<TSignSgdParam> params;
            for (const auto& l : layers) {
                params.push_back({l.lota->lora_a(), l.lota->grad_a()});
                params.push_back({l.lota->lora_b(), l.lota->grad_b()});
            }
            values.push_back(tsignsgd_step_async(params, step, total, o.tsign));
            for (const auto& l : layers) l.lota->zero_grad();
        } else {
            const double lr = adamw_lr(o.adamw, step, total);
            const double norm = adamw_step(lparams, adam, o.adamw, lr);
            for (const auto& p : lparams) p.mutable_grad() = at::Tensor();
            rec.update({{"lr", lr}, {"grad_norm", norm}});
        }
        for (auto& v : values) v = v.to(model->device());
        const at::Tensor host = at::cat(values).cpu();
        const double loss = host[0].item<double>() / (double)sl.label_tokens;
        LOTA_CHECK(std::isfinite(loss),
                   "step %lld: loss is %g (not finite); stopping. The last good checkpoint in %s is kept; try a "
                   "lower learning rate or check the data",
                   (long long)step, loss, o.out.c_str());
        rec["loss"] = loss;
        if (o.method == "lota") {
            const LotaStats ls = lota_stats_from(host.narrow(0, 1, 3), layers);
            const TSignSgdStats ts = tsignsgd_stats_from(host.narrow(0, 4, 5), step, total, o.tsign);
            rec.update({{"sigma_t", ts.sigma_t}, {"markers_pos", ls.markers_pos}, {"markers_neg", ls.markers_neg},
                        {"mean_abs_offset", ls.mean_abs_offset}, {"grad_norm", ts.grad_norm},
                        {"n_changed", ts.n_changed}, {"guard_active", ts.guard_active}});
        }
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        rec.update({{"tokens_per_s", (double)sl.tokens / dt}, {"step_time_s", dt},
                    {"peak_mem_mib", kernels::device_peak_memory_mib(model->device())}});
        train_log_append(log_path, rec);
        progress.update(step, strfmt("loss %.4f | %.0f tok/s | %s %.4g | grad norm %.4g", loss,
                                     (double)sl.tokens / dt, o.method == "lota" ? "sigma" : "lr",
                                     o.method == "lota" ? rec["sigma_t"].get<double>() : rec["lr"].get<double>(),
                                     rec["grad_norm"].get<double>()));
        if (step == start + 1) res.first_loss = loss;
        res.last_loss = loss;
        ++res.steps_done;
        const bool stop_early = o.max_steps_this_run > 0 && res.steps_done >= o.max_steps_this_run && step < total;
        if ((o.save_every > 0 && step % o.save_every == 0) || step == total || stop_early)
            checkpoint_save(o.out, step, checkpoint_make(layers, config, adam, o, total, order.position()));
        if (stop_early) return res;
    }
    io::adapter_write(o.out, adapter::adapter_collect(layers, config, cuda ? at::kBFloat16 : at::kFloat));
    loss_curve_write(log_path, o.out + "/loss_curve.svg");
    LOTA_LOG_INFO("wrote adapter to %s", o.out.c_str());
    return res;
}

}  // namespace lota::train
