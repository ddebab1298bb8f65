// lota generate: greedy (default) or sampled continuation of a prompt given as token ids
// (--prompt-ids JSON) or text (--prompt, needs tokenizer.json in the model directory;
// --chat renders the prompt as a user message with the model's chat template). With --prompts
// FILE (any training format) every prompt is answered in batches and the answers are written
// to --out as chat JSONL ({"messages": [..., assistant answer]}): training data made by a model.
#include <cstdio>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "args.h"
#include "commands.h"
#include "eval/answers.h"
#include "io/mapped_file.h"
#include "io/token_ids.h"
#include "model/generate.h"
#include "model/prompt.h"
#include "data/readers.h"
#include "util/check.h"
#include "util/json_read.h"

namespace {

struct GenerateCliOptions {
    std::string model, adapter, prompt_ids, prompt, prompts, format = "chat", out, device = "cpu", dtype = "f32";
    bool chat = false, no_cache = false, no_graph = false;
    int64_t batch_size = 16, limit = -1;
    lota::model::GenerateOptions gen;
};

int run_generate_file(GenerateCliOptions& o, lota::model::Transformer& model) {
    LOTA_CHECK(!o.out.empty(), "generate: --prompts needs --out FILE.jsonl");
    std::vector<lota::data::TextPair> pairs =
        lota::data::data_read_pairs(o.prompts, lota::data::data_format_from_name(o.format));
    if (o.limit > 0 && (int64_t)pairs.size() > o.limit) pairs.resize((size_t)o.limit);
    const lota::model::PromptText text(o.model);
    lota::eval::AnswerOptions ao;
    ao.gen = o.gen;
    ao.batch_size = o.batch_size;
    const std::vector<lota::eval::Answer> answers = lota::eval::generate_answers(model, text, pairs, ao);
    std::string jsonl;
    for (size_t i = 0; i < pairs.size(); ++i) {
        nlohmann::json messages = pairs[i].prompt;
        messages.push_back({{"role", "assistant"}, {"content", answers[i].text}});
        jsonl += nlohmann::json({{"messages", messages}}).dump() + "\n";
    }
    lota::io::file_write_atomic(o.out, jsonl.data(), jsonl.size());
    std::fprintf(stderr, "generate: wrote %zu answers to %s\n", pairs.size(), o.out.c_str());
    return 0;
}

int run_generate(GenerateCliOptions& o) {
    torch::NoGradGuard no_grad;
    LOTA_CHECK(int(!o.prompt_ids.empty()) + int(!o.prompt.empty()) + int(!o.prompts.empty()) == 1,
               "generate: give exactly one of --prompt-ids, --prompt and --prompts");
    auto model = lota::cli::load_model(o.model, o.adapter, o.device, o.dtype);
    o.gen.use_cache = !o.no_cache;
    o.gen.cuda_graph = !o.no_graph;
    if (!o.prompts.empty()) return run_generate_file(o, *model);
    if (!o.prompt_ids.empty()) {
        nlohmann::json j;
        try {
            j = lota::json_parse(o.prompt_ids, "--prompt-ids");
        } catch (const nlohmann::json::exception& e) {
            LOTA_FAIL("--prompt-ids: malformed JSON: %s", e.what());
        }
        auto prompts = lota::io::token_ids_parse(j, "--prompt-ids");
        for (int64_t e : model->config().eos_token_ids) o.gen.stop_ids.push_back(e);
        auto out = lota::model::generate(*model, prompts, o.gen);
        nlohmann::json result = j[0].is_array() ? nlohmann::json(out) : nlohmann::json(out[0]);
        std::printf("%s\n", result.dump().c_str());
        return 0;
    }
    lota::model::PromptText text(o.model);
    std::vector<int64_t> ids = text.encode_prompt(o.prompt, o.chat);
    o.gen.stop_ids = text.stop_ids(model->config());
    lota::model::StreamDecoder stream(text);
    o.gen.on_token = [&](int64_t, int64_t tok) {
        std::string piece = stream.push(tok);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    lota::model::generate(*model, {ids}, o.gen);
    std::string rest = stream.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
    return 0;
}

LOTA_COMMAND("generate", "Generate a continuation (greedy by default)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<GenerateCliOptions>();
    sub.add_option("--model", o->model, "HF model directory")->required();
    lota::cli::add_adapter_flag(sub, o->adapter);
    sub.add_option("--prompt-ids", o->prompt_ids, "JSON array of token ids (or array of arrays: a batch)");
    sub.add_option("--prompt", o->prompt, "prompt text (uses the model's tokenizer)");
    sub.add_option("--prompts", o->prompts, "dataset file whose prompts to answer (see --format, --out)");
    sub.add_option("--format", o->format, "--prompts format: alpaca|gsm8k|chat|viggo")->capture_default_str();
    sub.add_option("--out", o->out, "--prompts: output chat JSONL");
    sub.add_option("--batch-size", o->batch_size, "--prompts: prompts per batch")->capture_default_str();
    sub.add_option("--limit", o->limit, "--prompts: first N prompts only (-1: all)")->capture_default_str();
    sub.add_flag("--chat", o->chat, "render --prompt as a user message with the chat template");
    sub.add_option("--max-new-tokens", o->gen.max_new_tokens, "tokens to generate")->capture_default_str();
    sub.add_option("--temperature", o->gen.temperature, "0 = greedy")->capture_default_str();
    sub.add_option("--top-p", o->gen.top_p, "nucleus sampling mass")->capture_default_str();
    lota::cli::add_seed_flag(sub, o->gen.seed);
    sub.add_flag("--no-kv-cache", o->no_cache, "recompute the whole sequence each step (reference path)");
    sub.add_flag("--no-cuda-graph", o->no_graph, "CUDA: launch each decode step's kernels one by one");
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    return [o] { return run_generate(*o); };
});

}  // namespace
