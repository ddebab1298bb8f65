// lota eval: evaluation tasks on a model directory (dense or GPTQ). Task "ppl": perplexity on a
// text file (eval/perplexity.h); prints one line, or a JSON object with --json.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "eval/perplexity.h"
#include "model/transformer.h"
#include "text/tokenizer.h"
#include "util/check.h"

namespace {

struct EvalOptions {
    std::string task = "ppl", model, device = "cpu", dtype = "f32";
    lota::eval::PerplexityOptions ppl;
    bool json = false;
};

int run_eval(const EvalOptions& o) {
    LOTA_CHECK(o.task == "ppl", "eval: unknown task \"%s\" (supported: ppl)", o.task.c_str());
    auto model = lota::model::Transformer::load(o.model, {o.device, o.dtype});
    const lota::text::Tokenizer tok = lota::text::Tokenizer::from_dir(o.model);
    const lota::eval::PerplexityResult r = lota::eval::perplexity_eval(*model, tok, o.ppl);
    if (o.json) {
        const nlohmann::json j = {{"task", "ppl"},          {"model", o.model},         {"data", o.ppl.data},
                                  {"ppl", r.ppl},           {"mean_nll", r.mean_nll},   {"tokens", r.tokens},
                                  {"windows", r.windows},   {"seqlen", o.ppl.seqlen},   {"text_tokens", r.text_tokens},
                                  {"device", o.device},     {"dtype", o.dtype},         {"seconds", r.seconds}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("ppl %.4f | nll %.5f | %lld tokens in %lld windows of %lld | %.1fs\n", r.ppl, r.mean_nll,
                    (long long)r.tokens, (long long)r.windows, (long long)o.ppl.seqlen, r.seconds);
    }
    return 0;
}

LOTA_COMMAND("eval", "Evaluate a model (task ppl: perplexity on a text file)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<EvalOptions>();
    sub.add_option("--task", o->task, "ppl")->check(CLI::IsMember({"ppl"}))->capture_default_str();
    sub.add_option("--model", o->model, "HF model directory (dense or GPTQ)")->required();
    sub.add_option("--data", o->ppl.data, "text file (UTF-8)")->required();
    sub.add_option("--seqlen", o->ppl.seqlen, "window length in tokens")->capture_default_str();
    sub.add_option("--max-windows", o->ppl.max_windows, "evaluate at most N windows (-1: all)")->capture_default_str();
    sub.add_flag("--json", o->json, "print one JSON object");
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    return [o] { return run_eval(*o); };
});

}  // namespace
