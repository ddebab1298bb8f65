// lota eval: evaluation tasks on a model directory (dense, GPTQ or merged LoTA), optionally with
// an unmerged adapter. Tasks: "ppl" — perplexity on a text file (eval/perplexity.h); "loss" —
// held-out answer loss on a dataset in a training format (eval/heldout_loss.h). Both can also
// report the KL divergence from a reference model (--kl-reference). Prints one line, or one JSON
// object with --json.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "eval/heldout_loss.h"
#include "eval/perplexity.h"
#include "model/transformer.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/strfmt.h"

namespace {

struct EvalOptions {
    std::string task = "ppl", model, adapter, kl_reference, data, device = "cpu", dtype = "f32";
    lota::eval::PerplexityOptions ppl;
    lota::eval::HeldoutLossOptions loss;
    bool json = false;
};

std::string kl_text(double kl) { return kl >= 0 ? lota::strfmt(" | KL %.5f", kl) : ""; }

int run_eval(EvalOptions& o) {
    auto model = lota::cli::load_model(o.model, o.adapter, o.device, o.dtype);
    std::unique_ptr<lota::model::Transformer> reference;
    if (!o.kl_reference.empty()) reference = lota::cli::load_model(o.kl_reference, "", o.device, o.dtype);
    nlohmann::json j = {{"task", o.task}, {"model", o.model}, {"adapter", o.adapter}, {"data", o.data},
                        {"device", o.device}, {"dtype", o.dtype}};
    if (reference) j["kl_reference"] = o.kl_reference;
    std::string line;
    if (o.task == "ppl") {
        o.ppl.data = o.data;
        const lota::text::Tokenizer tok = lota::text::Tokenizer::from_dir(o.model);
        const lota::eval::PerplexityResult r = lota::eval::perplexity_eval(*model, tok, o.ppl, reference.get());
        j.update({{"ppl", r.ppl}, {"mean_nll", r.mean_nll}, {"tokens", r.tokens}, {"windows", r.windows},
                  {"seqlen", o.ppl.seqlen}, {"text_tokens", r.text_tokens}, {"seconds", r.seconds}});
        if (reference) j["kl"] = r.kl;
        line = lota::strfmt("ppl %.4f | nll %.5f%s | %lld tokens in %lld windows of %lld | %.1fs", r.ppl, r.mean_nll,
                            kl_text(r.kl).c_str(), (long long)r.tokens, (long long)r.windows,
                            (long long)o.ppl.seqlen, r.seconds);
    } else if (o.task == "loss") {
        o.loss.data.path = o.data;
        const lota::eval::HeldoutLossResult r = lota::eval::heldout_loss_eval(*model, o.model, o.loss, reference.get());
        j.update({{"format", o.loss.data.format}, {"loss", r.mean_nll}, {"ppl", r.ppl}, {"tokens", r.tokens},
                  {"examples", r.examples}, {"seconds", r.seconds}});
        if (reference) j["kl"] = r.kl;
        line = lota::strfmt("loss %.5f | ppl %.4f%s | %lld answer tokens in %lld examples | %.1fs", r.mean_nll, r.ppl,
                            kl_text(r.kl).c_str(), (long long)r.tokens, (long long)r.examples, r.seconds);
    } else {
        LOTA_FAIL("eval: unknown task \"%s\" (supported: ppl, loss)", o.task.c_str());
    }
    std::printf("%s\n", o.json ? j.dump().c_str() : line.c_str());
    return 0;
}

LOTA_COMMAND("eval", "Evaluate a model: perplexity (ppl) or held-out answer loss (loss)",
             [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<EvalOptions>();
    sub.add_option("--task", o->task, "ppl: perplexity of a text file; loss: answer loss of a dataset")
        ->check(CLI::IsMember({"ppl", "loss"}))
        ->capture_default_str();
    sub.add_option("--model", o->model, "HF model directory (dense, GPTQ or merged LoTA)")->required();
    lota::cli::add_adapter_flag(sub, o->adapter);
    sub.add_option("--data", o->data, "ppl: UTF-8 text file; loss: dataset file in --format")->required();
    sub.add_option("--seqlen", o->ppl.seqlen, "ppl: window length in tokens")->capture_default_str();
    sub.add_option("--max-windows", o->ppl.max_windows, "ppl: evaluate at most N windows (-1: all)")
        ->capture_default_str();
    sub.add_option("--format", o->loss.data.format, "loss: alpaca|gsm8k|chat|viggo|text")->capture_default_str();
    sub.add_option("--source-max-len", o->loss.data.source_max_len, "loss: prompt tokens kept")->capture_default_str();
    sub.add_option("--target-max-len", o->loss.data.target_max_len, "loss: answer tokens kept")->capture_default_str();
    sub.add_option("--batch-size", o->loss.batch_size, "loss: examples per forward")->capture_default_str();
    sub.add_option("--limit", o->loss.limit, "loss: first N examples only (-1: all)")->capture_default_str();
    sub.add_option("--kl-reference", o->kl_reference,
                   "also report KL(reference || model) per scored token, e.g. against the 16-bit model");
    sub.add_flag("--json", o->json, "print one JSON object");
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    return [o] { return run_eval(*o); };
});

}  // namespace
