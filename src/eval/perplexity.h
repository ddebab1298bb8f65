// Perplexity on a text file, as GPTQ's evaluation computes it: the text is tokenized once,
// cut into non-overlapping windows of L tokens, and ppl = exp(mean NLL of every token predicted
// inside a window) (each window predicts its tokens 2..L). Not a generation or task eval.
#pragma once

#include <cstdint>
#include <string>

namespace lota::model {
class Transformer;
}
namespace lota::dist {
class Group;
}
namespace lota::text {
class Tokenizer;
}

namespace lota::eval {

struct PerplexityOptions {
    std::string data;          ///< UTF-8 text file (e.g. WikiText-2 test, joined)
    int64_t seqlen = 2048;     ///< window length L
    int64_t max_windows = -1;  ///< evaluate only the first N windows (−1: all)
};

struct PerplexityResult {
    double ppl = 0;
    double mean_nll = 0;       ///< natural log
    int64_t tokens = 0;        ///< tokens scored
    int64_t windows = 0;
    int64_t text_tokens = 0;   ///< tokens in the whole text
    double seconds = 0;
    /// Mean over scored tokens of KL(p_reference ‖ p_model) in nats; −1 without a reference.
    double kl = -1;
};

/// Evaluates `model` on opts.data. A text shorter than L gives one window of all its tokens
/// (with a warning); fewer than 2 tokens throws lota::Error naming the file. With `reference`
/// (e.g. the 16-bit model a quantized one came from, same vocabulary) the same windows also run
/// through it and the result carries the mean KL divergence from it.
/// With `group` of several ranks (dist/dist.h) the windows are split across the ranks and the
/// result, on every rank, is one process's to the bit.
PerplexityResult perplexity_eval(model::Transformer& model, const text::Tokenizer& tok, const PerplexityOptions& opts,
                                 model::Transformer* reference = nullptr, dist::Group* group = nullptr);

}  // namespace lota::eval
