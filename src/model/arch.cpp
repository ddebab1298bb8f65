// Tensor-name table for the supported architectures (see arch.h).
#include "model/arch.h"

namespace lota::model {

const std::vector<LinearSlot>& linear_slots() {
    static const std::vector<LinearSlot> slots = {
        {"q_proj", "self_attn.q_proj"}, {"k_proj", "self_attn.k_proj"}, {"v_proj", "self_attn.v_proj"},
        {"o_proj", "self_attn.o_proj"}, {"gate_proj", "mlp.gate_proj"}, {"up_proj", "mlp.up_proj"},
        {"down_proj", "mlp.down_proj"},
    };
    return slots;
}

std::string name_embed() { return "model.embed_tokens.weight"; }
std::string name_final_norm() { return "model.norm.weight"; }
std::string name_lm_head() { return "lm_head.weight"; }
std::string name_block(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }
std::string name_linear(int64_t layer, const LinearSlot& slot) { return name_block(layer) + slot.path; }
std::string name_input_norm(int64_t layer) { return name_block(layer) + "input_layernorm.weight"; }
std::string name_post_norm(int64_t layer) { return name_block(layer) + "post_attention_layernorm.weight"; }
std::string name_q_norm(int64_t layer) { return name_block(layer) + "self_attn.q_norm.weight"; }
std::string name_k_norm(int64_t layer) { return name_block(layer) + "self_attn.k_norm.weight"; }

}  // namespace lota::model
