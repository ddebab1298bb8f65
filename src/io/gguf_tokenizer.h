// Rebuilds HF tokenizer files from a GGUF's tokenizer.ggml.* metadata.
//
// Spec: ggml docs/gguf.md "Tokenizer"; the output is HF tokenizers' tokenizer.json (model BPE) and
// transformers' tokenizer_config.json. It reproduces what transformers builds when it loads the
// same GGUF (integrations/gguf/gguf_tokenizer_mapping.py): byte-level vocabulary (tokens outside
// GPT-2's byte alphabet respelled byte by byte), merges as given, CONTROL tokens added as special,
// USER_DEFINED ones as plain added tokens, the split regex for tokenizer.ggml.pre (GPT-2's
// ByteLevel regex otherwise), a ByteLevel decoder, and BOS/EOS post-processing as the GGUF says.
// Only tokenizer.ggml.model == "gpt2" (byte-level BPE) is supported; others throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lota::io {

class GgufFile;

/// Special token ids of a GGUF (absent ones are empty).
struct GgufSpecialTokens {
    std::optional<int64_t> bos, eos, unk, pad;
};

/// Reads tokenizer.ggml.{bos,eos,unknown,padding}_token_id, checking each is < n_vocab.
GgufSpecialTokens gguf_special_tokens(const GgufFile& g, int64_t n_vocab);

struct GgufTokenizerFiles {
    std::string tokenizer_json;         ///< tokenizer.json text
    std::string tokenizer_config_json;  ///< tokenizer_config.json text (with chat_template)
};

/// Builds tokenizer.json and tokenizer_config.json from the GGUF metadata. `model_max_length` is
/// written into tokenizer_config.json. Throws lota::Error naming the file and key on bad data.
GgufTokenizerFiles gguf_tokenizer_build(const GgufFile& g, int64_t model_max_length);

}  // namespace lota::io
