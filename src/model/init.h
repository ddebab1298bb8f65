// Deterministic random models in HF format (config.json + safetensors [+ tokenizer files]) that
// HF transformers loads: test fixtures and benchmark shapes (e.g. Llama-3.1-8B, Llama-3.3-70B).
// With bits > 0 the block projections are RTN-quantized as they are drawn and the output is a GPTQ
// checkpoint, the same as `lota quantize --method rtn` of the 16-bit model, without ever holding it.
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
    int bits = 0;                     ///< 0: dense weights of `dtype`; 2, 3, 4 or 8: a GPTQ checkpoint of RTN codes
    int group_size = 128;             ///< with bits: 32, 64, 128, ... dividing every in_features, or -1 (per channel)
    bool sym = false;                 ///< with bits: symmetric grid
    uint64_t shard_bytes = 4ull << 30;  ///< largest safetensors shard (io::ModelFilesWriter): the memory it buffers
    /// Where the draws and RTN run: "cpu" (the default) or "cuda"/"auto". A GPU makes a 70B model in
    /// minutes instead of tens of minutes, with other values than the CPU (Note [init streams]).
    std::string device = "cpu";
};

/// What model_init did.
struct InitReport {
    int64_t params = 0;          ///< parameters drawn
    uint64_t bytes = 0;          ///< tensor data written
    double seconds = 0;
    double peak_memory_mib = 0;  ///< peak resident set of the process so far
};

/// Writes the model into options.out (via a temporary directory and rename), one tensor at a time:
/// memory holds one drawn tensor (float32) and the shard being filled, never the whole model.
/// The values depend on the seed, the shapes and the device kind only (not on the thread count):
/// Note [init streams].
InitReport model_init(const InitOptions& options);

}  // namespace lota::model
