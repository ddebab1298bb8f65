// Autoregressive generation: batched prompts (left padding), KV cache or full recomputation,
// greedy or sampled (temperature, top-p, seeded), per-sequence stop tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer.h"

namespace lota::model {

struct GenerateOptions {
    int64_t max_new_tokens = 64;
    double temperature = 0.0;  ///< 0: greedy
    double top_p = 1.0;
    uint64_t seed = 0;
    bool use_cache = true;            ///< false: recompute the whole sequence every step (reference)
    bool cuda_graph = true;           ///< on CUDA, replay decode steps as a CUDA graph (decode_graph.h)
    /// on CUDA, batches of more rows than the packed-code product takes keep the quantized weights
    /// dequantized while generation runs, when the device has room (false: dequantize at every step)
    bool keep_dequantized = true;
    std::vector<int64_t> stop_ids;    ///< a sequence ends after emitting one of these
    /// Called with (sequence index, token) as each token is chosen (streaming).
    std::function<void(int64_t, int64_t)> on_token;
};

/// Returns the new tokens of each prompt (stop token included when hit).
std::vector<std::vector<int64_t>> generate(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options);

/// Picks the next token from logits [B, V] (float32): argmax, or temperature/top-p sampling.
at::Tensor sample_next(const at::Tensor& logits, double temperature, double top_p, at::Generator& gen);

}  // namespace lota::model
