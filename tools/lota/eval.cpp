// lota eval: evaluation tasks on a model directory (dense, GPTQ or merged LoTA), optionally with
// an unmerged adapter. Tasks: "ppl" — perplexity on a text file (eval/perplexity.h); "loss" —
// held-out answer loss on a dataset in a training format (eval/heldout_loss.h); "mmlu" — k-shot
// multiple choice by log-likelihood (eval/mmlu.h); "gsm8k", "sql", "viggo" — greedy answers scored
// with the official rules (eval/generation_tasks.h). ppl and loss can also report the KL divergence
// from a reference model (--kl-reference). Prints a line or table, or one JSON object with --json.
// Under torchrun every task runs data parallel with one process's result (docs/distributed.md).

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "eval/generation_tasks.h"
#include "eval/heldout_loss.h"
#include "eval/mmlu.h"
#include "eval/mmlu_report.h"
#include "eval/perplexity.h"
#include "model/prompt.h"
#include "model/transformer.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

namespace eval = lota::eval;

struct EvalOptions {
    std::string task = "ppl", model, adapter, kl_reference, data, device, dtype, subjects;
    int64_t batch_size = -1, limit = -1;  // −1: the task's default / everything
    int head_bits = 0;  // 0: the head as stored; else quantized (Transformer::quantize_head)
    int64_t head_group_size = 0;
    eval::PerplexityOptions ppl;
    eval::HeldoutLossOptions loss;
    eval::MmluOptions mmlu;
    eval::GenerationTaskOptions gen;
    bool json = false, overwrite = false;
};

std::string kl_text(double kl) { return kl >= 0 ? lota::strfmt(" | KL %.5f", kl) : ""; }

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t b = 0;
    while (b <= s.size() && !s.empty()) {
        const size_t e = std::min(s.find(',', b), s.size());
        if (e > b) out.push_back(s.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

// The flags that decide which examples each rank runs and what it computes, for Group::check_same.
std::string settings_text(const EvalOptions& o) {
    return lota::strfmt("%s %s %s %s %lld %lld %lld %lld %lld %lld %lld %lld %d %lld %s %d %lld", o.task.c_str(),
                        o.device.c_str(), o.dtype.c_str(), o.subjects.c_str(), (long long)o.batch_size,
                        (long long)o.limit, (long long)o.ppl.seqlen, (long long)o.ppl.max_windows,
                        (long long)o.loss.data.source_max_len, (long long)o.loss.data.target_max_len,
                        (long long)o.mmlu.shots, (long long)o.mmlu.max_len, (int)o.mmlu.add_bos,
                        (long long)o.gen.max_total_len, o.loss.data.format.c_str(), o.head_bits,
                        (long long)o.head_group_size);
}

// Runs o.task other than ppl/loss (data parallel over `group`); fills `j` and returns the text to print.
std::string run_task(EvalOptions& o, lota::model::Transformer& model, lota::dist::Group& group, nlohmann::json& j) {
    if (o.task == "mmlu") {
        o.mmlu.data = o.data;
        o.mmlu.subjects = split_commas(o.subjects);
        o.mmlu.limit = o.limit;
        if (o.batch_size > 0) o.mmlu.batch_size = o.batch_size;
        const eval::MmluResult r = eval::mmlu_eval(model, lota::text::Tokenizer::from_dir(o.model), o.mmlu, &group);
        j.update(eval::mmlu_result_json(r));
        j["shots"] = o.mmlu.shots;
        return eval::mmlu_result_table(r);
    }
    const eval::GenerationTask task = eval::generation_task_from_name(o.task);
    o.gen.data = o.data;
    o.gen.limit = o.limit;
    if (o.batch_size > 0) o.gen.batch_size = o.batch_size;
    const eval::GenerationTaskResult r =
        eval::generation_task_eval(model, lota::model::PromptText(o.model), task, o.gen, &group);
    j.update({{"accuracy", r.accuracy}, {"examples", r.examples}, {"correct", r.correct},
              {"new_tokens", r.new_tokens}, {"max_total_len", o.gen.max_total_len}, {"seconds", r.seconds}});
    if (!o.gen.out.empty()) j["out"] = o.gen.out;
    return lota::strfmt("%s accuracy %.2f%% (%lld of %lld) | %lld new tokens | %.1fs%s", o.task.c_str(),
                        100.0 * r.accuracy, (long long)r.correct, (long long)r.examples, (long long)r.new_tokens,
                        r.seconds, o.gen.out.empty() ? "" : (" | predictions in " + o.gen.out).c_str());
}

int run_eval(EvalOptions& o) {
    LOTA_CHECK(o.kl_reference.empty() || o.task == "ppl" || o.task == "loss",
               "eval: --kl-reference applies to --task ppl and loss only");
    if (!o.gen.out.empty()) {
        LOTA_CHECK(o.task == "gsm8k" || o.task == "sql" || o.task == "viggo",
                   "eval: --out applies to --task gsm8k, sql and viggo only");
        lota::output_path_check(o.gen.out, {{"--model", o.model}, {"--adapter", o.adapter}, {"--data", o.data},
                                            {"--kl-reference", o.kl_reference}});
        lota::output_file_check(o.gen.out, o.overwrite);
    }
    lota::cli::runtime_resolve(o.device, o.dtype);
    return lota::cli::run_ranks(o.device, "eval", [&](lota::dist::Group& group) {
        if (!group.single_process()) {
            group.check_same("the model directory", lota::dist::dir_digest(o.model));
            group.check_same("the adapter directory", o.adapter.empty() ? "" : lota::dist::dir_digest(o.adapter));
            group.check_same("the data (" + o.data + ")", lota::dist::dir_digest(o.data));
            if (!o.kl_reference.empty())
                group.check_same("the --kl-reference model", lota::dist::dir_digest(o.kl_reference));
            group.check_same("the evaluation settings (flags)", settings_text(o));
        }
        auto model = lota::cli::load_model(o.model, o.adapter, o.device, o.dtype);
        // The generation tasks are decode steps: a bf16 checkpoint's weights are read as bf16 on the CPU.
        if (o.task == "gsm8k" || o.task == "sql" || o.task == "viggo")
            model->store_bf16_weights_if_exact(o.gen.batch_size);
        lota::cli::head_quantize(*model, o.head_bits, o.head_group_size, group.root());
        std::unique_ptr<lota::model::Transformer> reference;
        // --kl-reference naming the model itself (no adapter, head as stored): the model is its own reference, KL 0
        // without a second forward. The reference keeps its head as stored.
        const bool self_reference = !o.kl_reference.empty() && o.adapter.empty() && o.head_bits == 0 &&
                                    lota::same_path(o.kl_reference, o.model);
        if (!o.kl_reference.empty() && !self_reference)
            reference = lota::cli::load_model(o.kl_reference, "", o.device, o.dtype);
        lota::model::Transformer* const reference_model = self_reference ? model.get() : reference.get();
        nlohmann::json j = {{"task", o.task}, {"model", o.model}, {"adapter", o.adapter}, {"data", o.data},
                            {"device", o.device}, {"dtype", o.dtype}};
        if (reference_model) j["kl_reference"] = o.kl_reference;
        if (o.head_bits > 0) j.update({{"head_bits", o.head_bits}, {"head_group_size", o.head_group_size}});
        if (!group.single_process()) j["ranks"] = group.size();
        std::string line;
        if (o.task == "ppl") {
            o.ppl.data = o.data;
            const lota::text::Tokenizer tok = lota::text::Tokenizer::from_dir(o.model);
            const eval::PerplexityResult r = eval::perplexity_eval(*model, tok, o.ppl, reference_model, &group);
            j.update({{"ppl", r.ppl}, {"mean_nll", r.mean_nll}, {"tokens", r.tokens}, {"windows", r.windows},
                      {"seqlen", o.ppl.seqlen}, {"text_tokens", r.text_tokens}, {"seconds", r.seconds}});
            if (reference_model) j["kl"] = r.kl;
            line = lota::strfmt("ppl %.4f | nll %.5f%s | %lld tokens in %lld windows of %lld | %.1fs", r.ppl, r.mean_nll,
                                kl_text(r.kl).c_str(), (long long)r.tokens, (long long)r.windows,
                                (long long)o.ppl.seqlen, r.seconds);
        } else if (o.task == "loss") {
            o.loss.data.path = o.data;
            o.loss.limit = o.limit;
            if (o.batch_size > 0) o.loss.batch_size = o.batch_size;
            const eval::HeldoutLossResult r = eval::heldout_loss_eval(*model, o.model, o.loss, reference_model, &group);
            j.update({{"format", o.loss.data.format}, {"loss", r.mean_nll}, {"ppl", r.ppl}, {"tokens", r.tokens},
                      {"examples", r.examples}, {"seconds", r.seconds}});
            if (reference_model) j["kl"] = r.kl;
            line = lota::strfmt("loss %.5f | ppl %.4f%s | %lld answer tokens in %lld examples | %.1fs", r.mean_nll, r.ppl,
                                kl_text(r.kl).c_str(), (long long)r.tokens, (long long)r.examples, r.seconds);
        } else {
            line = run_task(o, *model, group, j);
        }
        if (group.root()) lota::cli::result_print(o.json, j, line);
        return 0;
    });
}

LOTA_COMMAND("eval", "Evaluate a model: perplexity, held-out loss, MMLU, GSM8K, SQL or ViGGO accuracy",
             [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<EvalOptions>();
    sub.add_option("--task", o->task,
                   "ppl: perplexity of a text file; loss: answer loss of a dataset; mmlu: k-shot multiple choice; "
                   "gsm8k|sql|viggo: greedy answers scored with the official rules")
        ->check(CLI::IsMember({"ppl", "loss", "mmlu", "gsm8k", "sql", "viggo"}))
        ->capture_default_str();
    lota::cli::add_model_flag(sub, o->model, "dense, GPTQ or merged LoTA");
    lota::cli::add_adapter_flag(sub, o->adapter, "applied unmerged");
    lota::cli::add_data_flag(sub, o->data,
                             "ppl: UTF-8 text; loss: dataset in --format; mmlu: folder with dev/ and test/; gsm8k: "
                             "JSONL {question, answer}; sql: chat JSONL; viggo: CSV mr,ref")
        ->required();
    lota::cli::add_format_flag(sub, o->loss.data.format, " (task loss)");
    lota::cli::add_batch_size_flag(
        sub, o->batch_size,
        lota::strfmt("one forward; -1: the task's default: loss %lld, mmlu %lld, gsm8k/sql/viggo %lld",
                     (long long)eval::HeldoutLossOptions{}.batch_size, (long long)eval::MmluOptions{}.batch_size,
                     (long long)eval::GenerationTaskOptions{}.batch_size),
        -1);
    lota::cli::add_limit_flag(sub, o->limit, "; tasks loss, gsm8k, sql, viggo, and mmlu per subject");
    lota::cli::add_out_flag(sub, o->gen.out, "gsm8k, sql, viggo: JSONL of prompt, prediction, reference, verdict");
    lota::cli::add_overwrite_flag(sub, o->overwrite, "--out file");
    sub.add_option("--seqlen", o->ppl.seqlen, "ppl: window length in tokens")
        ->check(lota::cli::int_range(2))
        ->capture_default_str();
    sub.add_option("--max-windows", o->ppl.max_windows, "ppl: evaluate at most N windows (-1: all)")
        ->check(lota::cli::int_range(1, INT64_MAX, -1))
        ->capture_default_str();
    sub.add_option("--source-max-len", o->loss.data.source_max_len, "loss: prompt tokens kept")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--target-max-len", o->loss.data.target_max_len, "loss: answer tokens kept")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--kl-reference", o->kl_reference,
                   "ppl, loss: also report KL(reference || model) per scored token, e.g. against the 16-bit model");
    sub.add_option("--shots", o->mmlu.shots, "mmlu: dev examples before each question")
        ->check(lota::cli::int_range(0))
        ->capture_default_str();
    sub.add_option("--subjects", o->subjects, "mmlu: comma-separated subjects (default: all in DATA/test)");
    sub.add_option("--max-len", o->mmlu.max_len,
                   "mmlu: tokens per sequence, longer prompts are cut from the left (-1: max_position_embeddings)")
        ->check(lota::cli::int_range(2, INT64_MAX, -1))
        ->capture_default_str();
    sub.add_flag("--add-bos", o->mmlu.add_bos, "mmlu: encode prompts with the tokenizer's special tokens (BOS)");
    sub.add_option("--max-total-len", o->gen.max_total_len, "gsm8k, sql, viggo: prompt + answer tokens")
        ->check(lota::cli::int_range(2))
        ->capture_default_str();
    lota::cli::add_head_quant_flags(sub, o->head_bits, o->head_group_size);
    lota::cli::add_json_flag(sub, o->json);
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    return [o] { return run_eval(*o); };
});

}  // namespace
