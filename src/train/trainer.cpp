// The fine-tuning loop (trainer.h). Everything that depends on the method comes from the
// TrainMethod and the Optimizer chosen at the start; the loop itself is the same for both.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "adapter/attach.h"
#include "dist/dist.h"
#include "kernels/device_memory.h"
#include "model/arch.h"
#include "model/device.h"
#include "model/prompt.h"
#include "model/transformer.h"
#include "train/block_checkpoint.h"
#include "train/checkpoint.h"
#include "train/grad_reduce.h"
#include "train/lm_loss.h"
#include "train/nonfinite.h"
#include "train/optimizer.h"
#include "train/step_trace.h"
#include "train/train_log.h"
#include "train/train_method.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::train {
namespace {

using Clock = std::chrono::steady_clock;
using adapter::AdaptedLayer;

io::AdapterConfig adapter_config_make(const TrainOptions& o, const TrainMethod& method, int bits, int group_size,
                                      int64_t total_steps) {
    io::AdapterConfig c;
    c.method = o.method;
    c.r = o.rank;
    c.lora_alpha = o.lora_alpha > 0 ? o.lora_alpha : 2.0 * (double)o.rank;
    c.base_model = o.model;
    if (o.target_modules.empty())
        for (model::Slot s : model::PROJECTION_SLOTS) c.target_modules.push_back(model::slot_info(s).short_name);
    else
        c.target_modules = o.target_modules;
    c.omega = o.omega > 0 ? o.omega : 0.75 * (double)o.rank;
    c.bits = bits;
    c.group_size = group_size;
    method.config_fill(c, o, total_steps);
    return c;
}

/// Step-0 adapter, drawn in module order from one generator seeded with `seed`.
io::Adapter adapter_initial(model::Transformer& model, const TrainMethod& method, const io::AdapterConfig& c,
                            uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    io::Adapter a;
    a.config = c;
    for (const auto& t : adapter::adapter_targets(model, c.target_modules))
        a.modules[t.name] = method.module_initial(t, c, gen);
    return a;
}

struct StepLoss {
    at::Tensor loss_sum;  ///< float64 scalar on the device: Σ token CE of the step (read back later)
    int64_t label_tokens = 0, tokens = 0;
};

/// Forward + backward of this rank's share of one optimizer step's examples, in micro-batches cut
/// from the global batch (the same cut for any number of ranks); gradients go to `reducer`. The
/// loss is normalised by the target tokens of the whole global batch. No host sync: the loss stays
/// on the device (a non-finite loss is caught after the step).
StepLoss step_forward_backward(model::Transformer& model, const std::vector<data::Example>& data,
                               const std::vector<int64_t>& idx, int64_t micro, const TrainOptions& o,
                               const TrainMethod& method, const std::vector<AdaptedLayer>& layers, int64_t step,
                               dist::Group& group, GradReducer& reducer) {
    std::vector<data::Batch> batches;
    StepLoss r;
    for (size_t i = 0; i < idx.size(); i += (size_t)micro) {
        std::vector<const data::Example*> ex;
        for (size_t j = i; j < std::min(idx.size(), i + (size_t)micro); ++j) ex.push_back(&data[idx[j]]);
        batches.push_back(data::batch_collate(ex));
        r.label_tokens += batches.back().n_label_tokens;
        r.tokens += batches.back().mask.sum().item<int64_t>();  // CPU tensor: no device sync
    }
    LOTA_CHECK(r.label_tokens > 0, "a training step has no target tokens (all targets truncated away?)");
    const at::Device dev = model.device();
    r.loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev));
    const auto [first, last] = dist::shard((int64_t)batches.size(), group.rank(), group.size());
    reducer.step_begin(last - first);
    for (int64_t m = first; m < last; ++m) {
        const data::Batch& b = batches[m];
        model.ids_check(b.ids);
        const std::optional<at::Generator> gen = method.micro_batch_begin(layers, dev, o.seed, step, m);
        // Host ids and mask: the embedding (host table or not) and prepare() need no device readback.
        const at::Tensor h =
            forward_hidden_checkpointed(model, b.ids, b.mask, gen, o.recompute_blocks, o.offload);
        // Only positions with a target reach the final norm and the LM head (prompt and padding rows
        // carry neither loss nor gradient; the head is a fifth of a small model's FLOPs).
        const data::BatchTargets t = data::batch_targets(b);
        const at::Tensor hn = model.final_norm(model::Transformer::rows_at(h, b.mask, t.rows));
        const at::Tensor loss = lm_loss_sum(hn, model.lm_head_weight(), t.targets.to(dev), o.loss_chunk_rows);
        r.loss_sum.add_(loss.detach().to(at::kDouble));
        (loss / (double)r.label_tokens).backward();
        reducer.micro_batch_end();
    }
    reducer.step_end();
    // Float64 sum of float32 micro-batch losses: exact for losses of similar size, like the gradients.
    group.all_reduce_sum(r.loss_sum, "the loss all-reduce");
    return r;
}

Checkpoint checkpoint_make(const std::vector<AdaptedLayer>& layers, const io::AdapterConfig& c, const Optimizer& opt,
                           const TrainOptions& o, int64_t total, int64_t position) {
    Checkpoint ck;
    ck.adapter = adapter::adapter_collect(layers, c, at::kFloat);
    OptimizerState os = opt.state_save();
    ck.optimizer = std::move(os.tensors);
    os.scalars["name"] = opt.name();
    ck.state = {{"total_steps", total},
                {"data_position", position},
                {"seed", o.seed},
                {"method", io::adapter_method_name(o.method)},
                {"batch_size", o.batch_size},
                {"optimizer", os.scalars},
                {"rng", "derived from (seed, step) and (seed, epoch)"}};
    return ck;
}

/// Refuses a checkpoint made with other settings; returns its step.
int64_t checkpoint_check(const Checkpoint& ck, const TrainOptions& o, int64_t total) {
    const nlohmann::json& st = ck.state;
    const std::string where = ck.dir + "/trainer_state.json";
    const io::AdapterMethod method =
        io::adapter_method_parse(st.value("method", std::string()), where + ": \"method\"");
    const int64_t steps = json_int_or(st, "total_steps", 0, where + ": \"total_steps\"");
    const int64_t batch = json_int_or(st, "batch_size", 0, where + ": \"batch_size\"");
    const uint64_t seed = st.contains("seed") && st["seed"].is_number_unsigned() ? st["seed"].get<uint64_t>() : 0;
    LOTA_CHECK(method == o.method && steps == total && seed == o.seed && batch == o.batch_size,
               "%s: the checkpoint was made with different settings (method %s, %lld steps, seed %llu, batch %lld; "
               "this run: method %s, %lld steps, seed %llu, batch %lld)",
               where.c_str(), io::adapter_method_name(method), (long long)steps, (unsigned long long)seed,
               (long long)batch,
               io::adapter_method_name(o.method), (long long)total, (unsigned long long)o.seed,
               (long long)o.batch_size);
    LOTA_CHECK(st.contains("step") && st.contains("data_position"), "%s: expected \"step\" and \"data_position\"",
               where.c_str());
    return json_int(st.at("step"), where + ": \"step\"", 0, total);
}

/// Gives `opt` the checkpoint's optimizer state (throws when it is not that optimizer's, or incomplete).
void optimizer_restore(Optimizer& opt, const Checkpoint& ck) {
    const nlohmann::json scalars = ck.state.value("optimizer", nlohmann::json::object());
    LOTA_CHECK(scalars.is_object() && scalars.value("name", std::string()) == opt.name(),
               "%s/trainer_state.json: the checkpoint's optimizer is %s, this run's is '%s'", ck.dir.c_str(),
               scalars.is_object() && scalars.contains("name") ? scalars.at("name").dump().c_str() : "not recorded",
               opt.name().c_str());
    opt.state_load({ck.optimizer, scalars}, ck.dir);
}

/// Everything that decides the numbers a run produces, for the ranks' agreement check.
std::string settings_text(const TrainOptions& o, int64_t micro, int64_t total, const io::AdapterConfig& c) {
    const TSignSgdOptions& t = o.tsign;
    const AdamWOptions& a = o.adamw;
    const nlohmann::json j = {
        {"method", io::adapter_method_name(o.method)}, {"total", total}, {"batch", o.batch_size}, {"micro", micro},
        {"r", c.r}, {"omega", c.omega}, {"alpha", c.lora_alpha}, {"targets", c.target_modules},
        {"seed", o.seed}, {"format", o.data.format}, {"source_max_len", o.data.source_max_len},
        {"target_max_len", o.data.target_max_len}, {"recompute", o.recompute_blocks},
        {"chunk", o.loss_chunk_rows}, {"resume", o.resume}, {"device", o.device}, {"dtype", o.dtype},
        {"save_every", o.save_every}, {"stop_after", o.max_steps_this_run}, {"lora_dropout", o.lora_dropout},
        {"tsign", {t.q_start, t.q_mid, t.q_end, t.phase1_frac, t.tau, (int)t.schedule, t.guard_norm, t.guard_quantile,
                   t.momentum}},
        {"adamw", {a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.warmup_ratio, a.schedule, a.max_grad_norm}}};
    return j.dump();
}

}  // namespace

TrainResult train_run(const TrainOptions& o, dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const bool root = group.root();  // rank 0 writes the log, the checkpoints and the adapter
    LOTA_CHECK(o.batch_size >= 1 && o.rank >= 1, "--batch-size and --rank must be >= 1, got %lld and %lld",
               (long long)o.batch_size, (long long)o.rank);
    LOTA_CHECK(o.omega == 0 || (std::isfinite(o.omega) && o.omega > 0 && o.omega < (double)o.rank),
               "--omega must be in (0, rank %lld), got %g (a code moves where |A·B| > omega, and |A·B| <= rank)",
               (long long)o.rank, o.omega);
    LOTA_CHECK(!(o.resume && o.overwrite), "--resume and --overwrite exclude each other");
    LOTA_CHECK(!root || o.resume || o.overwrite || dir_is_empty_or_missing(o.out),
               "%s: output directory exists and is not empty (use --resume to continue a run, --overwrite to "
               "start over, or a new --out)",
               o.out.c_str());
    const std::unique_ptr<TrainMethod> method = train_method_make(o.method);
    const char* method_name = io::adapter_method_name(o.method);
    const std::string device = model::device_resolve(o.device);
    // Several ranks split each step's micro-batches; without --micro-batch-size each rank gets one.
    const int64_t micro_default = (o.batch_size + group.size() - 1) / group.size();
    const int64_t micro = std::min(o.micro_batch_size > 0 ? o.micro_batch_size : micro_default, o.batch_size);
    const int64_t n_micro = (o.batch_size + micro - 1) / micro;
    if (root && !group.single_process() && n_micro % group.size() != 0)
        LOTA_LOG_WARN("%lld micro-batches a step on %d ranks: some ranks run one more than others (choose "
                      "--micro-batch-size so that the ranks divide --batch-size / micro-batch size)",
                      (long long)n_micro, group.size());
    if (!group.single_process()) {
        group.check_same("the model directory (names, sizes and first and last bytes of its files)",
                         dist::dir_digest(o.model));
        group.check_same("the training data (" + o.data.path + ")", dist::dir_digest(o.data.path));
    }
    auto model = model::Transformer::load(o.model, {device, model::dtype_resolve(o.dtype, device)});
    // Training only reads rows of the input embedding: with --offload the table stays on the host.
    if (o.offload && model->device().is_cpu() && root)
        LOTA_LOG_WARN("--offload has no effect on the CPU (everything is in host memory already)");
    if (o.offload && model->embedding_to_host() && root)
        LOTA_LOG_INFO("input embedding kept in host memory (%.2f GiB of device memory)",
                      (double)model->embed_weight().nbytes() / double(1 << 30));
    const model::PromptText text(o.model);
    const std::vector<data::Example> data = data::data_load(o.data, text);
    const double epochs = o.epochs > 0 ? o.epochs : 1.0;
    const int64_t total = o.steps > 0 ? o.steps
                                      : std::max<int64_t>(1, (int64_t)std::ceil(epochs * (double)data.size() /
                                                                                (double)o.batch_size));
    const auto [bits, group_size] = adapter::model_quant_format(*model);
    const io::AdapterConfig config = adapter_config_make(o, *method, bits, group_size, total);
    group.check_same("the training settings (flags)", dist::digest(settings_text(o, micro, total, config)));

    if (root) {
        if (o.overwrite && !dir_is_empty_or_missing(o.out)) {  // the inputs loaded: only now delete the old run
            LOTA_CHECK(remove_tree(o.out), "%s: cannot remove the old output (--overwrite)", o.out.c_str());
            LOTA_LOG_INFO("removed the old contents of %s (--overwrite)", o.out.c_str());
        }
        stale_temps_remove(o.out);
        std::filesystem::create_directories(o.out);
    }
    const std::string log_path = o.out + "/train_log.jsonl";
    data::DataOrder order((int64_t)data.size(), o.seed);
    int64_t start = 0;
    // Every rank reads the checkpoint (--out must be on a filesystem they share); they must agree on it.
    const std::optional<Checkpoint> ck = o.resume ? checkpoint_load_latest(o.out) : std::nullopt;
    io::Adapter initial;
    if (ck) {
        start = checkpoint_check(*ck, o, total);
        order.seek(json_int(ck->state.at("data_position"), ck->dir + "/trainer_state.json: \"data_position\"", 0));
        initial = ck->adapter;
        initial.config = config;
    } else {
        if (o.resume && root) LOTA_LOG_WARN("%s: no checkpoint to resume from; starting at step 0", o.out.c_str());
        initial = adapter_initial(*model, *method, config, o.seed);
    }
    group.check_same("the step to resume from (is --out on a filesystem every rank reads?)", std::to_string(start));
    const std::vector<AdaptedLayer> layers = adapter::adapter_apply(*model, initial, o.out);
    const std::unique_ptr<Optimizer> opt = method->optimizer_make(layers, o);
    // Exact float64 gradient sums whenever a step's gradient has more than one term (grad_reduce.h).
    GradReducer reducer(method->grad_entries(layers), group, n_micro > 1 || !group.single_process());
    method->grad_hooks(layers, reducer);
    if (ck) {
        optimizer_restore(*opt, *ck);
        if (root) train_log_truncate(log_path, start);
        if (root) LOTA_LOG_INFO("resuming %s from step %lld of %lld", o.out.c_str(), (long long)start, (long long)total);
    } else if (root && path_exists(log_path)) {
        std::filesystem::remove(log_path);
    }
    if (root)
        LOTA_LOG_INFO("training %s: %zu adapted modules, r=%lld, %zu examples, %lld steps of %lld (micro-batch %lld%s)",
                      method_name, layers.size(), (long long)config.r, data.size(), (long long)total,
                      (long long)o.batch_size, (long long)micro,
                      group.single_process() ? "" : strfmt("; %d ranks, %s", group.size(), group.backend()).c_str());

    TrainResult res;
    std::optional<Progress> progress;
    if (root) progress.emplace(std::string("train ") + method_name, total, 0.0, start);
    // The traced step: the second, after the first has warmed up the allocator and the kernels.
    const int64_t traced = o.trace.empty() || !root ? -1 : std::min(start + 2, total);
    for (int64_t step = start + 1; step <= total; ++step) {
        if (step == traced) step_trace_begin(model->device().is_cuda());
        const auto t0 = Clock::now();
        const std::vector<int64_t> idx = order.take(o.batch_size);
        const StepLoss sl = step_forward_backward(*model, data, idx, micro, o, *method, layers, step, group, reducer);
        StepStats stats = method->step_stats(layers);  // of the adapter this step's forward used
        stats.add_device("loss_sum", sl.loss_sum);
        stats.append(opt->step(step, total));
        opt->zero_grad();
        // Everything the log needs comes back in this one read (LoTA-QAF: the only host sync of the
        // step). A non-finite loss is reported after the optimizer step, before any write; every rank
        // sees the same (all-reduced) loss, so all stop together.
        nlohmann::json rec = stats.read(model->device());
        if (step == traced) step_trace_end(o.trace);
        const double loss = rec.at("loss_sum").get<double>() / (double)sl.label_tokens;
        rec.erase("loss_sum");
        const double grad_norm = rec.value("grad_norm", 0.0);
        if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
            std::vector<const data::Example*> first;
            for (size_t i = 0; i < std::min(idx.size(), (size_t)micro); ++i) first.push_back(&data[idx[i]]);
            const std::string where = nonfinite_find(*model, layers, data::batch_collate(first));
            const double bad = std::isfinite(loss) ? grad_norm : loss;
            LOTA_FAIL("step %lld: %s is %s (not finite); first non-finite tensor: %s. Stopping; checkpoints already in "
                      "%s are kept; try a lower learning rate or check the data",
                      (long long)step, std::isfinite(loss) ? "the gradient norm" : "loss",
                      std::isnan(bad) ? "nan" : bad > 0 ? "inf" : "-inf",
                      where.empty() ? "none found when rerunning the step's first micro-batch" : where.c_str(),
                      o.out.c_str());
        }
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        rec.update({{"step", step}, {"target_tokens", sl.label_tokens}, {"loss", loss},
                    {"tokens_per_s", (double)sl.tokens / dt}, {"step_time_s", dt},
                    {"peak_mem_mib", kernels::device_peak_memory_mib(model->device())}});
        if (!group.single_process()) rec["ranks"] = group.size();
        if (root) {
            train_log_append(log_path, rec);
            progress->update(step, strfmt("loss %.4f | %.0f tok/s | ", loss, (double)sl.tokens / dt) +
                                       opt->progress_text(rec));
        }
        if (root && step == start + 1 && !group.single_process())
            LOTA_LOG_INFO("gradient all-reduce: %zu bucket(s), %.1f MiB of float64 sums a step; %zu started during "
                          "the backward",
                          reducer.n_buckets(), (double)reducer.bucket_bytes_total() / (1 << 20),
                          reducer.n_launched_in_backward());
        if (step == start + 1) res.first_loss = loss;
        res.last_loss = loss;
        ++res.steps_done;
        const bool stop_early = o.max_steps_this_run > 0 && res.steps_done >= o.max_steps_this_run && step < total;
        if (root && ((o.save_every > 0 && step % o.save_every == 0) || step == total || stop_early))
            checkpoint_save(o.out, step, checkpoint_make(layers, config, *opt, o, total, order.position()));
        if (stop_early) return res;
    }
    if (root) {
        // The final adapter in the compute dtype (LoRA; LoTA-QAF's is int8 whatever the dtype).
        io::adapter_write(o.out, adapter::adapter_collect(layers, config, model->dtype()));
        loss_curve_write(log_path, o.out + "/loss_curve.svg");
        LOTA_LOG_INFO("wrote adapter to %s", o.out.c_str());
    }
    return res;
}

}  // namespace lota::train
