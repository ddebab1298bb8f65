// tokenizer.ggml.* metadata of a GGUF file written from an HF model directory's tokenizer files, the
// keys llama.cpp's converter (convert_hf_to_gguf) writes: the "gpt2" model for byte-level BPE, the
// "llama" model for llama/mistral BPE with byte fallback. The reverse, GGUF metadata to tokenizer.json,
// is gguf_tokenizer.h.
#pragma once

#include <string>

namespace lota::io {

class GgufWriter;
struct ModelConfig;

/// Sets the tokenizer.ggml.* keys (and tokenizer.chat_template) of `w` from `model_dir`'s tokenizer.json,
/// tokenizer_config.json and config.json (`cfg`: architecture, vocab size, BOS/EOS ids). Throws naming
/// the file when tokenizer.json is missing or is not a tokenizer llama.cpp can load under a known name.
void gguf_tokenizer_export(GgufWriter& w, const std::string& model_dir, const ModelConfig& cfg);

}  // namespace lota::io
