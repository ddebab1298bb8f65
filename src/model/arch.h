// The architecture table of the supported models (Llama, Mistral, Qwen2, Qwen3 share one layout;
// Qwen2 adds q/k/v biases, Qwen3 adds q/k norms): HF tensor names, the projection slots of a
// block with their shapes in terms of the config, which carry a bias, and GPTQ's true-sequential
// groups. The only place these names and shapes live; other files go through Slot.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/hf_config.h"

namespace lota::model {

/// A projection of a transformer block. Q .. DOWN are the checkpoint's seven linears, in forward
/// order; QKV and GATE_UP are inference-only products of their parts (Transformer::fuse_projections).
enum class Slot { Q, K, V, O, GATE, UP, DOWN, QKV, GATE_UP };
constexpr size_t SLOT_COUNT = 9;

/// The seven projections stored in a checkpoint, in forward order (the order of every loop over a block).
inline constexpr std::array<Slot, 7> PROJECTION_SLOTS = {Slot::Q, Slot::K, Slot::V, Slot::O,
                                                         Slot::GATE, Slot::UP, Slot::DOWN};
/// The fused products.
inline constexpr std::array<Slot, 2> FUSED_SLOTS = {Slot::QKV, Slot::GATE_UP};

/// One dimension of a projection, in terms of the config.
enum class SlotDim { HIDDEN, INTERMEDIATE, Q_HEADS, KV_HEADS, QKV_HEADS, TWO_INTERMEDIATE };

/// One row of the slot table.
struct SlotInfo {
    const char* short_name;  ///< "q_proj": peft's module name and --target-modules; "qkv_proj" for fused ones
    const char* path;        ///< "self_attn.q_proj" inside the block; "" for fused slots (not in checkpoints)
    SlotDim out, in;         ///< shape [out, in] (HF layout)
    bool attention_bias;     ///< carries a bias when config.attention_bias (Qwen2's q/k/v)
    int group;               ///< true-sequential group (0: q, k, v; 1: o; 2: gate, up; 3: down); −1 fused
    std::vector<Slot> parts;  ///< the slots a fused product replaces, in output order; empty otherwise
};

/// The table row of `slot`.
const SlotInfo& slot_info(Slot slot);
/// Index of `slot` in 0 .. SLOT_COUNT−1 (Block's array index).
constexpr size_t slot_index(Slot slot) { return static_cast<size_t>(slot); }
/// [out, in] of `slot` for this config, e.g. Q: [heads·head_dim, hidden].
std::pair<int64_t, int64_t> slot_shape(const io::ModelConfig& config, Slot slot);
/// Whether `slot` carries a bias for this config.
bool slot_has_bias(const io::ModelConfig& config, Slot slot);
/// The projection whose short name is `short_name` ("q_proj" .. "down_proj"), or nullopt.
std::optional<Slot> slot_from_short_name(const std::string& short_name);
/// "q_proj, k_proj, ..., down_proj": the accepted short names, for messages.
std::string slot_short_names();
/// GPTQ's true-sequential groups in forward order: the projections of each group share one input
/// (Transformer::attn_in, attn_core, mlp_in, mlp_hidden) and are calibrated together.
const std::vector<std::vector<Slot>>& true_sequential_groups();

std::string name_embed();       ///< "model.embed_tokens.weight"
std::string name_final_norm();  ///< "model.norm.weight"
std::string name_lm_head();     ///< "lm_head.weight"
std::string name_block(int64_t layer);  ///< "model.layers.{layer}."
/// "model.layers.{layer}.{path}" for a projection of the checkpoint (no ".weight" suffix); throws for a fused slot.
std::string name_linear(int64_t layer, Slot slot);
std::string name_input_norm(int64_t layer);
std::string name_post_norm(int64_t layer);
std::string name_q_norm(int64_t layer);
std::string name_k_norm(int64_t layer);

}  // namespace lota::model
