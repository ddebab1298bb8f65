// Generation tasks (see generation_tasks.h).
#include "eval/generation_tasks.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "eval/answers.h"
#include "eval/task_scoring.h"
#include "io/mapped_file.h"
#include "model/prompt.h"
#include "data/examples.h"
#include "data/readers.h"
#include "dist/dist.h"
#include "util/check.h"

namespace lota::eval {
namespace {

data::DataFormat task_format(GenerationTask task) {
    switch (task) {
        case GenerationTask::GSM8K: return data::DataFormat::GSM8K;
        case GenerationTask::SQL: return data::DataFormat::CHAT;
        case GenerationTask::VIGGO: return data::DataFormat::VIGGO;
    }
    LOTA_ASSERT(false, "unknown generation task");
    return data::DataFormat::CHAT;
}

bool task_correct(GenerationTask task, const std::string& prediction, const std::string& reference) {
    switch (task) {
        case GenerationTask::GSM8K: return gsm8k_correct(prediction, reference);
        case GenerationTask::SQL: return sql_correct(prediction, reference);
        case GenerationTask::VIGGO: return viggo_correct(prediction, reference);
    }
    return false;
}

// A reference the rule cannot read would make every answer wrong: reject the file instead.
void reference_check(GenerationTask task, const std::string& reference, const std::string& where) {
    if (task == GenerationTask::GSM8K)
        LOTA_CHECK(gsm8k_answer(reference).has_value(), "%s: the answer has no \"#### <final answer>\" line",
                   where.c_str());
    if (task == GenerationTask::VIGGO)
        LOTA_CHECK(viggo_parse(reference).has_value(),
                   "%s: the meaning representation is not of the form function(attr[value], ...): \"%s\"",
                   where.c_str(), reference.c_str());
}

// The prompt exactly as the model saw it (special tokens included), for the predictions file.
std::string prompt_render(const data::TextPair& pair, const model::PromptText& text, int64_t source_max_len) {
    data::DataOptions render;
    render.source_max_len = source_max_len;  // as generate_answers cuts it
    const data::Example e = data::example_make({pair.prompt, ""}, text, render);
    return text.tokenizer().decode(std::vector<int32_t>(e.ids.begin(), e.ids.begin() + e.n_source), false);
}

}  // namespace

GenerationTask generation_task_from_name(const std::string& name) {
    if (name == "gsm8k") return GenerationTask::GSM8K;
    if (name == "sql") return GenerationTask::SQL;
    if (name == "viggo") return GenerationTask::VIGGO;
    LOTA_FAIL("unknown generation task '%s' (expected gsm8k, sql or viggo)", name.c_str());
}

const char* generation_task_name(GenerationTask task) {
    switch (task) {
        case GenerationTask::GSM8K: return "gsm8k";
        case GenerationTask::SQL: return "sql";
        case GenerationTask::VIGGO: return "viggo";
    }
    return "?";
}

GenerationTaskResult generation_task_eval(model::Transformer& model, const model::PromptText& text,
                                          GenerationTask task, const GenerationTaskOptions& o, dist::Group* group) {
    const auto t0 = std::chrono::steady_clock::now();
    LOTA_CHECK(o.max_total_len >= 2, "%s: max_total_len must be >= 2, got %lld", generation_task_name(task),
               (long long)o.max_total_len);
    std::vector<data::TextPair> pairs = data::data_read_pairs(o.data, task_format(task));
    if (o.limit >= 0 && (int64_t)pairs.size() > o.limit) pairs.resize((size_t)o.limit);
    LOTA_CHECK(!pairs.empty(), "%s: no examples to evaluate (--limit %lld)", o.data.c_str(), (long long)o.limit);
    for (size_t i = 0; i < pairs.size(); ++i)
        reference_check(task, pairs[i].target, o.data + " record " + std::to_string(i));
    AnswerOptions ao;
    ao.batch_size = o.batch_size;
    ao.max_total_len = o.max_total_len;
    ao.gen.max_new_tokens = o.max_total_len;  // the total cap decides; greedy is GenerateOptions' default
    const std::vector<Answer> answers = generate_answers(model, text, pairs, ao, group);
    GenerationTaskResult r;
    const bool write = !o.out.empty() && (group == nullptr || group->root());  // rank 0 alone writes
    std::string jsonl;
    for (size_t i = 0; i < pairs.size(); ++i) {
        const std::string prediction = text_strip(answers[i].text);  // the official code strips the answer
        const bool correct = task_correct(task, prediction, pairs[i].target);
        r.correct += correct;
        r.new_tokens += answers[i].new_tokens;
        if (write)
            jsonl += nlohmann::json({{"index", i},
                                     {"prompt", prompt_render(pairs[i], text, ao.source_max_len)},
                                     {"prediction", prediction},
                                     {"reference", pairs[i].target},
                                     {"verdict", correct ? "correct" : "wrong"}})
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                     "\n";  // a cut-off answer may end inside a UTF-8 character
    }
    if (write) io::file_write_atomic(o.out, jsonl.data(), jsonl.size());
    r.examples = (int64_t)pairs.size();
    r.accuracy = double(r.correct) / double(r.examples);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace lota::eval
