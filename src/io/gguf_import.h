// GGUF (llama architecture) -> HF model directory: config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json, generation_config.json.
//
// Weights are dequantized exactly (gguf_dequant.h) and cast to the requested dtype; llama.cpp's
// Q/K row permutation is undone (Note [llama.cpp Q/K permutation] in gguf_import.cpp); names follow
// HF's LlamaForCausalLM; lm_head.weight is written only when the GGUF has output.weight (else
// tie_word_embeddings). The reference is transformers loading the same GGUF (gguf_file=...).
// Not supported: other architectures, sentencepiece tokenizers, Llama 3.1 rope_freqs scaling.
// The directory appears atomically: everything goes into OUT.tmp-XXXXXX, renamed to OUT at the end,
// and removed on any error.
#pragma once

#include <string>

namespace lota::io {

struct GgufImportOptions {
    std::string gguf_path;          ///< input .gguf file
    std::string out_dir;            ///< output HF model directory (must not exist, or be empty)
    std::string dtype = "bf16";     ///< weight dtype in model.safetensors: bf16 | f16 | f32
    bool overwrite = false;         ///< replace an existing non-empty out_dir (util/fs.h StagedDir)
};

/// Converts a llama GGUF into an HF model directory. Throws lota::Error ("unsupported architecture X",
/// malformed file, existing non-empty output, ...) leaving no output behind.
void gguf_import(const GgufImportOptions& opts);

/// Writes every tensor of `gguf_path`, dequantized to float32 under its GGUF name and torch shape
/// (ne reversed), into the safetensors file `out_path`. For inspecting files and testing dequantization.
void gguf_dump_tensors(const std::string& gguf_path, const std::string& out_path);

}  // namespace lota::io
