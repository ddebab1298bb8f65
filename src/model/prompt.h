// Text side of generation: the model directory's tokenizer and chat template turned into prompt
// ids, stop tokens, and incremental (streamed) decoding that never splits a UTF-8 character.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/hf_config.h"
#include "text/tokenizer.h"

namespace lota::model {

class PromptText {
  public:
    /// Loads DIR/tokenizer.json (+ tokenizer_config.json); throws naming the file when absent.
    explicit PromptText(const std::string& model_dir);
    /// Ids for `prompt`; with `chat`, rendered as [{"role":"user","content":prompt}] with the
    /// chat template and a generation prompt (no second BOS, as apply_chat_template does).
    std::vector<int64_t> encode_prompt(const std::string& prompt, bool chat) const;
    /// Ids of a rendered chat (messages JSON array).
    std::vector<int64_t> encode_chat(const nlohmann::json& messages, bool add_generation_prompt) const;
    std::vector<int64_t> stop_ids(const io::ModelConfig& cfg) const;
    const text::Tokenizer& tokenizer() const { return tok_; }

  private:
    std::string dir_;
    text::Tokenizer tok_;
};

/// Decodes a growing token list and returns only the new, complete text each time.
class StreamDecoder {
  public:
    explicit StreamDecoder(const PromptText& text) : text_(text) {}
    std::string push(int64_t token);
    std::string finish();

  private:
    const PromptText& text_;
    std::vector<int32_t> ids_;
    size_t emitted_ = 0;
};

}  // namespace lota::model
