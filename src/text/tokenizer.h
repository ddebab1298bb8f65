// Tokenizer: loads a Hugging Face tokenizer.json BPE tokenizer (byte-level like GPT-2 / Llama 3 /
// Qwen / SmolLM2, or sentencepiece-style like Llama 2) plus tokenizer_config.json, and encodes /
// decodes exactly like HF `tokenizers` (Tokenizer.from_file(...).encode / .decode). Torch-free.
//
// Encoding follows HF's pipeline: added tokens are split out of the raw text (non-normalized ones
// first, then normalized ones from the normalized pieces, honouring lstrip / rstrip / single_word),
// each remaining piece is normalized, pre-tokenized and run through the BPE model, and the
// post-processor adds BOS/EOS when add_special_tokens is set.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lota::text {

class Tokenizer {
  public:
    /// Loads DIR/tokenizer.json and DIR/tokenizer_config.json (bos/eos tokens, chat_template,
    /// add_bos_token; DIR/chat_template.jinja when the config has no template). Throws lota::Error
    /// naming the file and the problem for missing files, malformed JSON, non-BPE models and
    /// unsupported normalizer / pre-tokenizer / decoder / post-processor types.
    static Tokenizer from_dir(const std::string& dir);
    /// Loads one tokenizer.json; `config_json` is the text of tokenizer_config.json ("" for none).
    static Tokenizer from_json_text(const std::string& tokenizer_json, const std::string& config_json,
                                    const std::string& name);

    /// Token ids of UTF-8 `text` (throws lota::Error on invalid UTF-8).
    std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = true) const;
    /// Text of `ids`; ids outside the vocabulary are skipped, as HF does.
    std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

    /// Including added tokens (max id + 1).
    int64_t vocab_size() const;
    std::optional<int32_t> token_to_id(const std::string& token) const;
    /// "" when id is unknown.
    std::string id_to_token(int32_t id) const;
    /// Whether id is an added token marked special.
    bool is_special(int32_t id) const;

    int32_t bos_id() const;  ///< -1 when absent
    int32_t eos_id() const;  ///< -1 when absent
    const std::string& bos_token() const;
    const std::string& eos_token() const;
    /// The (default) chat template; "" when absent.
    const std::string& chat_template() const;
    /// eos plus the end-of-turn specials present in the vocabulary (<|im_end|>, <|eot_id|>,
    /// <|end_of_text|>, </s>, <|endoftext|>), without duplicates.
    std::vector<int32_t> stop_ids() const;

    struct Impl;

  private:
    explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;  // immutable and thread-safe; copies share it
};

}  // namespace lota::text
