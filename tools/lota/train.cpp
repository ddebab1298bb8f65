// lota train: LoTA-QAF (or 16-bit LoRA, or QA-LoRA) fine-tuning of a quantized model; see src/train/trainer.h.
// `lota train --help` lists the flags in groups: data, model and adapter, each optimizer,
// schedule, checkpointing, runtime.
#include <sstream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "train/trainer.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

struct TrainCli {
    lota::train::TrainOptions o;
    std::string targets, tsign_schedule = "official";
    std::string method = lota::io::adapter_method_name(lota::train::TrainOptions().method);
    bool json = false;
    CLI::Option* dropout_flag = nullptr;  ///< --lora-dropout, to tell a given value from the default
};

int run_train(TrainCli& c) {
    c.o.target_modules = split_commas(c.targets);
    c.o.method = lota::io::adapter_method_parse(c.method, "--method");
    if (c.o.method == lota::io::AdapterMethod::QALORA) {
        LOTA_CHECK(c.dropout_flag->count() == 0 || c.o.lora_dropout == 0,
                   "--lora-dropout %g: QA-LoRA trains without dropout (its forward is the merged model's); leave "
                   "the flag out", c.o.lora_dropout);
        c.o.lora_dropout = 0;
    }
    LOTA_CHECK(c.tsign_schedule == "official" || c.tsign_schedule == "paper",
               "--tsign-schedule must be official or paper, got '%s'", c.tsign_schedule.c_str());
    c.o.tsign.schedule = c.tsign_schedule == "official" ? lota::train::TSignSchedule::OFFICIAL_INTERPOLATE
                                                        : lota::train::TSignSchedule::PAPER_FIXED_LAST;
    lota::output_path_check(c.o.out, {{"--model", c.o.model}, {"--data", c.o.data.path}});
    lota::cli::runtime_resolve(c.o.device, c.o.dtype);
    return lota::cli::run_ranks(c.o.device, "train", [&](lota::dist::Group& group) {
        const auto r = lota::train::train_run(c.o, &group);
        nlohmann::json j = {{"model", c.o.model}, {"out", c.o.out}, {"method", c.method},
                            {"steps", r.steps_done}, {"first_loss", r.first_loss}, {"last_loss", r.last_loss},
                            {"device", c.o.device}, {"dtype", c.o.dtype}};
        if (!group.single_process()) j["ranks"] = group.size();
        if (group.root())
            lota::cli::result_print(c.json, j,
                                    lota::strfmt("trained %lld steps (%s): loss %.4f -> %.4f; output in %s",
                                                 (long long)r.steps_done, c.method.c_str(), r.first_loss, r.last_loss,
                                                 c.o.out.c_str()));
        return 0;
    });
}

LOTA_COMMAND("train", "Fine-tune a quantized model with LoTA-QAF, 16-bit LoRA or QA-LoRA", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto c = std::make_shared<TrainCli>();
    auto& o = c->o;
    const auto unit = lota::cli::real_range(0, true, 1, true);
    const auto unit_open = lota::cli::real_range(0, true, 1, false);
    const auto non_negative = lota::cli::real_range(0, true, 1e30, true);
    sub.option_defaults()->group("Data");
    lota::cli::add_data_flag(sub, o.data.path, "training dataset file in --format")->required();
    lota::cli::add_format_flag(sub, o.data.format, "");
    sub.add_option("--source-max-len", o.data.source_max_len, "prompt tokens kept (text: window length)")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--target-max-len", o.data.target_max_len, "answer tokens kept")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();

    sub.option_defaults()->group("Model and adapter");
    lota::cli::add_model_flag(sub, o.model, "quantized, as lota quantize writes it");
    sub.add_option("--method", c->method,
                   "lota (LoTA-QAF, t-SignSGD), lora (16-bit LoRA baseline, AdamW) or qalora (QA-LoRA baseline, "
                   "AdamW; merges exactly)")
        ->check(CLI::IsMember({"lota", "lora", "qalora"}))
        ->capture_default_str();
    sub.add_option("--rank", o.rank, "adapter rank r")->check(lota::cli::int_range(1, 65536))->capture_default_str();
    sub.add_option("--omega", o.omega, "LoTA threshold omega, in (0, rank) (default 0.75*rank)")
        ->check(lota::cli::real_range(0, false, 65536, false));
    sub.add_option("--target-modules", c->targets, "comma-separated, e.g. q_proj,v_proj (default: all seven)");
    sub.add_option("--lora-alpha", o.lora_alpha, "LoRA / QA-LoRA alpha (default 2*rank)")
        ->check(lota::cli::real_range(0, false, 1e6, true));
    c->dropout_flag = sub.add_option("--lora-dropout", o.lora_dropout, "LoRA dropout (QA-LoRA: none)")
                          ->check(lota::cli::real_range(0, true, 1, false))
                          ->capture_default_str();
    sub.add_option("--qalora-pooling", o.qalora_pooling,
                   "QA-LoRA input pooling per quantization group: mean (official code) or sum (paper's Algorithm 1)")
        ->check(CLI::IsMember({"mean", "sum"}))
        ->capture_default_str();

    sub.option_defaults()->group("Optimizer: t-SignSGD (method lota)");
    sub.add_option("--tsign-schedule", c->tsign_schedule,
                   "official (interpolate to q_end) or paper (q_end fixed in phase 2)")
        ->capture_default_str();
    sub.add_option("--tsign-q-start", o.tsign.q_start, "quantile at step 0")->check(unit)->capture_default_str();
    sub.add_option("--tsign-q-mid", o.tsign.q_mid, "quantile at the end of phase 1")
        ->check(unit)
        ->capture_default_str();
    sub.add_option("--tsign-q-end", o.tsign.q_end, "quantile at the last step")->check(unit)->capture_default_str();
    sub.add_option("--tsign-phase1", o.tsign.phase1_frac, "phase 1 fraction of the steps")
        ->check(unit)
        ->capture_default_str();
    sub.add_option("--tsign-tau", o.tsign.tau, "minimum |gradient| that moves")
        ->check(non_negative)
        ->capture_default_str();
    sub.add_option("--tsign-guard-norm", o.tsign.guard_norm, "phase-2 guard: gradient norm threshold")
        ->check(non_negative)
        ->capture_default_str();
    sub.add_option("--tsign-momentum", o.tsign.momentum,
                   "beta in [0, 1): take each step on the moving average m = beta*m + (1-beta)*g of the gradient "
                   "instead of g (0: the paper's t-SignSGD; the adapter stays ternary, the merge exact)")
        ->check(unit_open)
        ->capture_default_str();

    sub.option_defaults()->group("Optimizer: AdamW (methods lora, qalora)");
    sub.add_option("--lr", o.adamw.lr, "peak learning rate, in (0, 1]")
        ->check(lota::cli::real_range(0, false, 1, true))
        ->capture_default_str();
    sub.add_option("--lr-schedule", o.adamw.schedule, "constant or cosine")
        ->check(CLI::IsMember({"constant", "cosine"}))
        ->capture_default_str();
    sub.add_option("--warmup-ratio", o.adamw.warmup_ratio, "warmup fraction of the steps")
        ->check(unit)
        ->capture_default_str();
    sub.add_option("--weight-decay", o.adamw.weight_decay, "weight decay")
        ->check(lota::cli::real_range(0, true, 1, true))
        ->capture_default_str();
    sub.add_option("--adam-beta1", o.adamw.beta1, "beta1")->check(unit_open)->capture_default_str();
    sub.add_option("--adam-beta2", o.adamw.beta2, "beta2")->check(unit_open)->capture_default_str();
    sub.add_option("--adam-eps", o.adamw.eps, "epsilon")
        ->check(lota::cli::real_range(0, false, 1, true))
        ->capture_default_str();
    sub.add_option("--max-grad-norm", o.adamw.max_grad_norm, "gradient clipping (global L2 norm; 0: off)")
        ->check(non_negative)
        ->capture_default_str();

    sub.option_defaults()->group("Schedule");
    auto* steps = sub.add_option("--steps", o.steps, "optimizer steps")->check(lota::cli::int_range(1));
    sub.add_option("--epochs", o.epochs, "epochs (when --steps is not given; default 1)")
        ->check(lota::cli::real_range(0, false, 1e6, true))
        ->excludes(steps);
    lota::cli::add_batch_size_flag(sub, o.batch_size, "one optimizer step");
    sub.add_option("--micro-batch-size", o.micro_batch_size,
                   "examples per forward (default: --batch-size, split evenly over the ranks of a torchrun run; "
                   "the adapter equals one process's run with the same --micro-batch-size)")
        ->check(lota::cli::int_range(1));

    sub.option_defaults()->group("Checkpointing");
    lota::cli::add_out_flag(sub, o.out, "adapter directory (checkpoints, train_log.jsonl, final adapter)")->required();
    sub.add_option("--save-every", o.save_every, "checkpoint every K steps (0: at the end only)")
        ->check(lota::cli::int_range(0))
        ->capture_default_str();
    sub.add_flag("--resume", o.resume, "continue from the latest checkpoint in --out");
    lota::cli::add_overwrite_flag(sub, o.overwrite,
                                  "--out directory (its contents are deleted once the model and data have loaded)");
    sub.add_option("--stop-after", o.max_steps_this_run, "checkpoint and stop after this many steps (testing)")
        ->check(lota::cli::int_range(1));

    sub.option_defaults()->group("Runtime");
    lota::cli::add_device_flag(sub, o.device);
    lota::cli::add_dtype_flag(sub, o.dtype);
    lota::cli::add_seed_flag(sub, o.seed, "adapter init, data order, LoRA dropout");
    sub.add_option("--recompute-blocks", o.recompute_blocks,
                   "gradient checkpointing: recompute the first N blocks in backward and keep the activations of "
                   "the rest (default: all blocks; more kept blocks = faster steps, more memory)")
        ->check(lota::cli::int_range(0));
    sub.add_flag_callback("--no-gradient-checkpointing", [&o] { o.recompute_blocks = 0; },
                          "keep all activations (same as --recompute-blocks 0)");
    sub.add_flag("--offload", o.offload,
                 "on a GPU, keep the input embedding table (unless tied to the LM head) and each recomputed block's "
                 "input in host memory: less GPU memory (vocab x hidden + tokens x hidden per block, 16-bit), a few "
                 "percent slower steps");
    sub.add_option("--trace", o.trace,
                   "write a profile of the second step (host ops, allocator events and CUDA kernels; Chrome trace JSON) "
                   "to FILE and "
                   "log the kernels that took the most device time");
    lota::cli::add_json_flag(sub, c->json);
    return [c] { return run_train(*c); };
});

}  // namespace
