// Supervised fine-tuning data: examples tokenized with the model's chat template, collated into
// right-padded micro-batches, visited in a deterministic order.
//
// Each pair is rendered as system "" + user(source) + assistant(target) with the chat template
// (model::PromptText); the source ids are the rendering of the prompt with a generation prompt,
// the target ids the rest of the full rendering. Loss is taken on target tokens only. Source and
// target are truncated (first tokens kept, as the official code does) to source_max_len /
// target_max_len. Without a chat template the documented plain prompt is used:
//     [BOS] "### Instruction:\n{source}\n\n### Response:\n"  then  "{target}" [EOS]
// where {source} joins the prompt's non-empty contents with "\n\n". Format text: the file is
// tokenized once and cut into windows of source_max_len tokens, every token a label.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "model/prompt.h"
#include "data/readers.h"

namespace lota::data {

struct DataOptions {
    std::string path;               ///< dataset file
    std::string format = "alpaca";  ///< alpaca | gsm8k | chat | viggo | text
    int64_t source_max_len = 1024;  ///< prompt tokens kept (text: window length)
    int64_t target_max_len = 256;   ///< answer tokens kept
};

/// One tokenized example: ids = source ++ target; labels on ids[n_source..].
struct Example {
    std::vector<int64_t> ids;
    int64_t n_source = 0;
};

/// Tokenizes one pair (see file comment).
Example example_make(const TextPair& pair, const model::PromptText& text, const DataOptions& options);

/// Reads and tokenizes the whole dataset. Throws naming the file on bad records.
std::vector<Example> data_load(const DataOptions& options, const model::PromptText& text);

/// A right-padded micro-batch: ids/mask [B, T] int64, labels [B, T] int64 (−100 = no loss), aligned
/// with ids (logits at t predict labels at t+1).
struct Batch {
    at::Tensor ids, mask, labels;
    int64_t n_label_tokens = 0;  ///< labels[:, 1:] != −100
};

Batch batch_collate(const std::vector<const Example*>& examples);

/// The positions of a batch that carry a next-token target, flattened over [B, T]: position t of row b
/// predicts labels[b, t + 1]. Prompt, padding and last positions have none and are left out, so only
/// these rows need the LM head. Both int64 [R] on the CPU (R = n_label_tokens).
struct BatchTargets {
    at::Tensor rows;     ///< flat indices b·T + t into [B·T]
    at::Tensor targets;  ///< labels[b, t + 1] of each row
};
BatchTargets batch_targets(const Batch& batch);

/// The deterministic visiting order: epoch e is a permutation of 0..n−1 drawn from seed + e, so
/// the position (examples consumed so far) alone restores the order on resume.
class DataOrder {
  public:
    DataOrder(int64_t n_examples, uint64_t seed);
    /// The next `count` example indices (wrapping into the next epoch); advances the position.
    std::vector<int64_t> take(int64_t count);
    int64_t position() const { return position_; }
    void seek(int64_t position) { position_ = position; }

  private:
    const std::vector<int64_t>& epoch_perm(int64_t epoch);
    int64_t n_;
    uint64_t seed_;
    int64_t position_ = 0, cached_epoch_ = -1;
    std::vector<int64_t> perm_;
};

}  // namespace lota::data
