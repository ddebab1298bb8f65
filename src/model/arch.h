// HF tensor names of the supported architectures (Llama, Mistral, Qwen2, Qwen3 share one
// layout; Qwen2 adds q/k/v biases, Qwen3 adds q/k norms). The only place these strings live.
#pragma once

#include <string>
#include <vector>

namespace lota::model {

/// The seven projections of a block: short name (peft/--target-modules) and path in the block.
struct LinearSlot {
    const char* short_name;  ///< "q_proj"
    const char* path;        ///< "self_attn.q_proj"
};
const std::vector<LinearSlot>& linear_slots();

std::string name_embed();       ///< "model.embed_tokens.weight"
std::string name_final_norm();  ///< "model.norm.weight"
std::string name_lm_head();     ///< "lm_head.weight"
std::string name_block(int64_t layer);  ///< "model.layers.{layer}."
/// "model.layers.{layer}.{path}" for a linear (no ".weight" suffix).
std::string name_linear(int64_t layer, const LinearSlot& slot);
std::string name_input_norm(int64_t layer);
std::string name_post_norm(int64_t layer);
std::string name_q_norm(int64_t layer);
std::string name_k_norm(int64_t layer);

}  // namespace lota::model
