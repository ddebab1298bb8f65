// lota generate: greedy (default) or sampled continuation of a prompt given as token ids
// (--prompt-ids JSON) or text (--prompt, needs tokenizer.json in the model directory;
// --chat renders the prompt as a user message with the model's chat template). With --data
// FILE (any training format) every prompt is answered in batches and the answers are written
// to --out as chat JSONL ({"messages": [..., assistant answer]}): training data made by a model.
// Text is streamed to stdout unless --json asks for one JSON object with text, ids and tokens/s.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "args.h"
#include "commands.h"
#include "data/readers.h"
#include "eval/answers.h"
#include "io/mapped_file.h"
#include "io/token_ids.h"
#include "model/generate.h"
#include "model/prompt.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/strfmt.h"

namespace {

struct GenerateCliOptions {
    std::string model, adapter, prompt_ids, prompt, data, format, out, device, dtype;
    bool chat = false, no_cache = false, no_graph = false, json = false, overwrite = false;
    int64_t batch_size = 16, limit = -1, head_group_size = 0;
    int head_bits = 0;
    lota::model::GenerateOptions gen;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Generation counters every mode reports.
nlohmann::json speed_json(int64_t new_tokens, double seconds) {
    return {{"new_tokens", new_tokens},
            {"seconds", seconds},
            {"tokens_per_s", seconds > 0 ? (double)new_tokens / seconds : 0.0}};
}

int run_generate_data(GenerateCliOptions& o, lota::model::Transformer& model, nlohmann::json& j) {
    LOTA_CHECK(!o.out.empty(), "generate: --data needs --out FILE.jsonl");
    std::vector<lota::data::TextPair> pairs =
        lota::data::data_read_pairs(o.data, lota::data::data_format_from_name(o.format));
    if (o.limit > 0 && (int64_t)pairs.size() > o.limit) pairs.resize((size_t)o.limit);
    const lota::model::PromptText text(o.model);
    lota::eval::AnswerOptions ao;
    ao.gen = o.gen;
    ao.batch_size = o.batch_size;
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<lota::eval::Answer> answers = lota::eval::generate_answers(model, text, pairs, ao);
    const double seconds = seconds_since(t0);
    std::string jsonl;
    int64_t new_tokens = 0;
    for (size_t i = 0; i < pairs.size(); ++i) {
        nlohmann::json messages = pairs[i].prompt;
        messages.push_back({{"role", "assistant"}, {"content", answers[i].text}});
        jsonl += nlohmann::json({{"messages", messages}}).dump() + "\n";
        new_tokens += answers[i].new_tokens;
    }
    lota::io::file_write_atomic(o.out, jsonl.data(), jsonl.size());
    j.update({{"data", o.data}, {"format", o.format}, {"out", o.out}, {"answers", (int64_t)pairs.size()}});
    j.update(speed_json(new_tokens, seconds));
    lota::cli::result_print(o.json, j, lota::strfmt("generate: wrote %zu answers to %s", pairs.size(), o.out.c_str()));
    return 0;
}

int run_generate_ids(GenerateCliOptions& o, lota::model::Transformer& model, nlohmann::json& j) {
    nlohmann::json ids_json;
    try {
        ids_json = lota::json_parse(o.prompt_ids, "--prompt-ids");
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("--prompt-ids: malformed JSON: %s", e.what());
    }
    const auto prompts = lota::io::token_ids_parse(ids_json, "--prompt-ids");
    for (int64_t e : model.config().eos_token_ids) o.gen.stop_ids.push_back(e);
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = lota::model::generate(model, prompts, o.gen);
    const double seconds = seconds_since(t0);
    int64_t new_tokens = 0;
    for (const auto& seq : out) new_tokens += (int64_t)seq.size();
    const nlohmann::json ids = ids_json[0].is_array() ? nlohmann::json(out) : nlohmann::json(out[0]);
    j["ids"] = ids;
    j.update(speed_json(new_tokens, seconds));
    lota::cli::result_print(o.json, j, ids.dump());
    return 0;
}

int run_generate_text(GenerateCliOptions& o, lota::model::Transformer& model, nlohmann::json& j) {
    const lota::model::PromptText text(o.model);
    const std::vector<int64_t> prompt = text.encode_prompt(o.prompt, o.chat);
    o.gen.stop_ids = text.stop_ids(model.config());
    lota::model::StreamDecoder stream(text);
    std::string decoded;
    o.gen.on_token = [&](int64_t, int64_t tok) {
        const std::string piece = stream.push(tok);
        if (o.json) {
            decoded += piece;
            return;
        }
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    };
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = lota::model::generate(model, {prompt}, o.gen);
    const double seconds = seconds_since(t0);
    const std::string rest = stream.finish();
    if (!o.json) {
        std::fwrite(rest.data(), 1, rest.size(), stdout);
        std::printf("\n");
        return 0;
    }
    j.update({{"text", decoded + rest}, {"ids", out[0]}, {"prompt_tokens", (int64_t)prompt.size()}});
    j.update(speed_json((int64_t)out[0].size(), seconds));
    lota::cli::result_print(true, j, "");
    return 0;
}

int run_generate(GenerateCliOptions& o) {
    torch::NoGradGuard no_grad;
    LOTA_CHECK(int(!o.prompt_ids.empty()) + int(!o.prompt.empty()) + int(!o.data.empty()) == 1,
               "generate: give exactly one of --prompt-ids, --prompt and --data");
    LOTA_CHECK(o.data.empty() == o.out.empty(), "generate: --data and --out go together (--out is where the "
               "answers to --data are written)");
    if (!o.out.empty()) {
        lota::output_path_check(o.out, {{"--model", o.model}, {"--adapter", o.adapter}, {"--data", o.data}});
        lota::output_file_check(o.out, o.overwrite);
    }
    lota::cli::runtime_resolve(o.device, o.dtype);
    auto model = lota::cli::load_model(o.model, o.adapter, o.device, o.dtype);
    // Decode steps read every weight: a bf16 checkpoint's weights are read as bf16 on the CPU (same values).
    model->store_bf16_weights_if_exact(o.data.empty() ? 1 : o.batch_size);
    lota::cli::head_quantize(*model, o.head_bits, o.head_group_size, true);
    o.gen.use_cache = !o.no_cache;
    o.gen.cuda_graph = !o.no_graph;
    nlohmann::json j = {{"model", o.model}, {"adapter", o.adapter}, {"device", o.device}, {"dtype", o.dtype}};
    if (o.head_bits > 0) j.update({{"head_bits", o.head_bits}, {"head_group_size", o.head_group_size}});
    if (!o.data.empty()) return run_generate_data(o, *model, j);
    if (!o.prompt_ids.empty()) return run_generate_ids(o, *model, j);
    return run_generate_text(o, *model, j);
}

LOTA_COMMAND("generate", "Generate a continuation (greedy by default)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<GenerateCliOptions>();
    lota::cli::add_model_flag(sub, o->model, "dense, GPTQ or merged LoTA");
    lota::cli::add_adapter_flag(sub, o->adapter, "applied unmerged");
    sub.add_option("--prompt-ids", o->prompt_ids, "JSON array of token ids (or array of arrays: a batch)");
    sub.add_option("--prompt", o->prompt, "prompt text (uses the model's tokenizer)");
    sub.add_flag("--chat", o->chat, "render --prompt as a user message with the chat template");
    lota::cli::add_data_flag(sub, o->data, "dataset whose prompts to answer (see --format, --out)");
    lota::cli::add_format_flag(sub, o->format, "");
    lota::cli::add_out_flag(sub, o->out, "with --data, chat JSONL of the prompts and the answers");
    lota::cli::add_overwrite_flag(sub, o->overwrite, "--out file");
    lota::cli::add_batch_size_flag(sub, o->batch_size, "with --data: prompts per generate call");
    lota::cli::add_limit_flag(sub, o->limit, "");
    sub.add_option("--max-new-tokens", o->gen.max_new_tokens, "tokens to generate")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--temperature", o->gen.temperature, "0 = greedy")
        ->check(lota::cli::real_range(0, true, 100, true))
        ->capture_default_str();
    sub.add_option("--top-p", o->gen.top_p, "nucleus sampling mass, in (0, 1]")
        ->check(lota::cli::real_range(0, false, 1, true))
        ->capture_default_str();
    lota::cli::add_seed_flag(sub, o->gen.seed, "sampling (with --temperature > 0)");
    sub.add_flag("--no-kv-cache", o->no_cache, "recompute the whole sequence each step (reference path)");
    sub.add_flag("--no-cuda-graph", o->no_graph, "CUDA: launch each decode step's kernels one by one");
    lota::cli::add_head_quant_flags(sub, o->head_bits, o->head_group_size);
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    lota::cli::add_json_flag(sub, o->json);
    return [o] { return run_generate(*o); };
});

}  // namespace
