// MMLU as lm-eval-harness scores it (the LoTA-QAF paper's Table 1): for each test question the
// few-shot prompt of mmlu_data.h is the context, and the answer is the letter whose continuation
// " A" / " B" / " C" / " D" has the highest log-likelihood (sum over its tokens, no length
// normalisation). Tokenization follows lm-eval's HF model: the continuation's tokens are those of
// encode(context + continuation) after the first len(encode(context)) tokens; no BOS unless
// add_bos. A sequence longer than max_len is cut from the left (lm-eval's rule), and counted.
// Accuracy per subject, per category and over all questions. Not here: the prompt text
// (mmlu_data.h), printing (the CLI).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lota::model {
class Transformer;
}
namespace lota::text {
class Tokenizer;
}
namespace lota::dist {
class Group;
}

namespace lota::eval {

struct MmluOptions {
    std::string data;                   ///< folder with dev/ and test/ ({subject}_{split}.csv)
    std::vector<std::string> subjects;  ///< only these; empty: every subject in data/test
    int64_t shots = 5;                  ///< dev examples before each question
    int64_t limit = -1;                 ///< first N test questions per subject (−1: all)
    int64_t batch_size = 8;             ///< sequences per forward
    int64_t max_len = -1;               ///< tokens per sequence; −1: the model's max_position_embeddings
    bool add_bos = false;               ///< encode with the tokenizer's special tokens (lm-eval's add_bos_token)
};

/// One scored question.
struct MmluAnswer {
    std::string subject;
    int64_t index = 0;             ///< row in the subject's test file (0-based, header excluded)
    int answer = 0, predicted = 0;  ///< 0..3 = A..D
    std::array<double, 4> loglik{};  ///< log-likelihood of " A".." D" given the prompt
    int64_t tokens = 0;            ///< context tokens (before truncation)
    bool truncated = false;
};

/// Questions and correct answers of a subject, a category or everything.
struct MmluScore {
    std::string name;
    int64_t n = 0, correct = 0;
    double acc() const { return n > 0 ? double(correct) / double(n) : 0.0; }
};

struct MmluResult {
    std::vector<MmluScore> subjects;    ///< in evaluation order
    std::vector<std::string> subject_categories;  ///< category of subjects[i]
    std::vector<MmluScore> categories;  ///< humanities, stem, social_sciences, other (n = 0 when absent)
    MmluScore all;                      ///< every question: lm-eval's "mmlu" (weight_by_size), the paper's Avg.
    double category_mean = 0;           ///< unweighted mean of the categories that have questions
    std::vector<MmluAnswer> answers;
    int64_t truncated = 0;              ///< sequences cut from the left
    int64_t max_len = 0;                ///< the limit that applied
    double seconds = 0;
};

/// Runs MMLU on `model` with `tok` (the model's tokenizer); progress on stderr. With `group` (data
/// parallel, dist/dist.h) each rank scores a contiguous share of the batches one process would run,
/// and every rank returns the whole result, equal to one process's. Throws naming the file on
/// missing or malformed data.
MmluResult mmlu_eval(model::Transformer& model, const text::Tokenizer& tok, const MmluOptions& options,
                     dist::Group* group = nullptr);

}  // namespace lota::eval
