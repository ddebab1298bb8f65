// Generation tasks GSM8K, SQL and ViGGO: each prompt is rendered exactly as training renders it
// (data/readers.h + eval/answers.h: system "" + user(source), chat template, generation
// prompt; ViGGO with its instruction), answered greedily with at most max_total_len tokens of
// prompt + answer in all (the official evaluation's max_length=512, which like HF generate counts
// from the longest prompt of a batch), and scored with the official rules (task_scoring.h).
// Files: gsm8k JSONL {question, answer}; sql chat JSONL (../shared/data/sql); viggo CSV mr,ref.
// Not here: the answer rules themselves, printing.
#pragma once

#include <cstdint>
#include <string>

namespace lota::model {
class PromptText;
class Transformer;
}  // namespace lota::model
namespace lota::dist {
class Group;
}

namespace lota::eval {

enum class GenerationTask { GSM8K, SQL, VIGGO };

/// "gsm8k" | "sql" | "viggo"; throws listing them otherwise.
GenerationTask generation_task_from_name(const std::string& name);
const char* generation_task_name(GenerationTask task);

struct GenerationTaskOptions {
    std::string data;             ///< dataset file in the task's format
    int64_t limit = -1;           ///< first N examples only (−1: all)
    int64_t batch_size = 16;      ///< prompts per generate() call
    int64_t max_total_len = 512;  ///< prompt + answer tokens (the official max_length)
    std::string out;              ///< JSONL of prompt, prediction, reference, verdict ("": none)
};

struct GenerationTaskResult {
    int64_t examples = 0, correct = 0;
    double accuracy = 0;
    int64_t new_tokens = 0;  ///< generated, all examples
    double seconds = 0;
};

/// Answers and scores the dataset; writes options.out atomically when set. With `group` (data
/// parallel) the ranks share the batches (generate_answers), every rank returns one process's
/// result and rank 0 alone writes options.out. Throws naming the file and record of a malformed
/// example or reference.
GenerationTaskResult generation_task_eval(model::Transformer& model, const model::PromptText& text,
                                          GenerationTask task, const GenerationTaskOptions& options,
                                          dist::Group* group = nullptr);

}  // namespace lota::eval
