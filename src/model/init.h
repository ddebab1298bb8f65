// Deterministic random models in HF format (config.json + safetensors [+ tokenizer files]) that
// HF transformers loads: test fixtures and benchmark shapes (e.g. Llama-3.1-8B).
#pragma once

#include <cstdint>
#include <string>

namespace lota::model {

struct InitOptions {
    std::string arch = "llama";  ///< llama | mistral | qwen2 | qwen3
    std::string out;             ///< output directory (must not exist, or be empty)
    uint64_t seed = 0;
    int64_t hidden = 64, layers = 2, heads = 4, kv_heads = 2, intermediate = 128, vocab = 256;
    int64_t head_dim = 0;             ///< 0: hidden / heads
    bool tie_embeddings = false;
    std::string rope_scaling;         ///< "" or "llama3"
    std::string tokenizer;            ///< optional DIR with tokenizer.json: vocab from it, files copied
    std::string dtype = "f32";        ///< stored dtype: f32 | bf16 | f16
    bool overwrite = false;           ///< replace an existing non-empty `out` (util/fs.h StagedDir)
};

/// Writes the model into options.out (via a temporary directory and rename).
void model_init(const InitOptions& options);

}  // namespace lota::model
