// Answers to prompts: each prompt (a data::TextPair's messages, rendered exactly as training
// renders them) is continued by the model in batches, and the new text is returned decoded.
// Shared by `lota generate --data` (which makes training data from a model's own answers)
// and the generation tasks of `lota eval`. Not here: scoring.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/prompt.h"
#include "data/readers.h"

namespace lota::dist {
class Group;
}

namespace lota::eval {

struct AnswerOptions {
    model::GenerateOptions gen;     ///< stop ids are filled from the model when empty
    int64_t batch_size = 16;        ///< prompts per generate() call
    int64_t source_max_len = 1024;  ///< prompt tokens kept (as in training)
    int64_t max_total_len = -1;     ///< prompt + answer cap; −1: none (e.g. 512 for the tasks)
};

struct Answer {
    std::string text;     ///< decoded answer, special tokens skipped
    int64_t prompt_tokens = 0, new_tokens = 0;
};

/// Generates one answer per pair (pair.target is ignored); progress on stderr. With `group` (data
/// parallel, dist/dist.h) each rank answers a contiguous share of the batches one process would run
/// and every rank returns all the answers, the same as one process's.
std::vector<Answer> generate_answers(model::Transformer& model, const model::PromptText& text,
                                     const std::vector<data::TextPair>& pairs, const AnswerOptions& options,
                                     dist::Group* group = nullptr);

}  // namespace lota::eval
