// The architecture table: tensor names and projection slots (see arch.h).
#include "model/arch.h"

#include "util/check.h"

namespace lota::model {
namespace {

// Indexed by Slot.
const SlotInfo SLOT_TABLE[SLOT_COUNT] = {
    {"q_proj", "self_attn.q_proj", SlotDim::Q_HEADS, SlotDim::HIDDEN, true, 0, {}},
    {"k_proj", "self_attn.k_proj", SlotDim::KV_HEADS, SlotDim::HIDDEN, true, 0, {}},
    {"v_proj", "self_attn.v_proj", SlotDim::KV_HEADS, SlotDim::HIDDEN, true, 0, {}},
    {"o_proj", "self_attn.o_proj", SlotDim::HIDDEN, SlotDim::Q_HEADS, false, 1, {}},
    {"gate_proj", "mlp.gate_proj", SlotDim::INTERMEDIATE, SlotDim::HIDDEN, false, 2, {}},
    {"up_proj", "mlp.up_proj", SlotDim::INTERMEDIATE, SlotDim::HIDDEN, false, 2, {}},
    {"down_proj", "mlp.down_proj", SlotDim::HIDDEN, SlotDim::INTERMEDIATE, false, 3, {}},
    {"qkv_proj", "", SlotDim::QKV_HEADS, SlotDim::HIDDEN, true, -1, {Slot::Q, Slot::K, Slot::V}},
    {"gate_up_proj", "", SlotDim::TWO_INTERMEDIATE, SlotDim::HIDDEN, false, -1, {Slot::GATE, Slot::UP}},
};

int64_t dim_size(const io::ModelConfig& c, SlotDim d) {
    switch (d) {
        case SlotDim::HIDDEN: return c.hidden_size;
        case SlotDim::INTERMEDIATE: return c.intermediate_size;
        case SlotDim::Q_HEADS: return c.num_attention_heads * c.head_dim;
        case SlotDim::KV_HEADS: return c.num_key_value_heads * c.head_dim;
        case SlotDim::QKV_HEADS: return (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
        case SlotDim::TWO_INTERMEDIATE: return 2 * c.intermediate_size;
    }
    throw_internal(__FILE__, __LINE__, "known SlotDim", strfmt(" SlotDim %d", static_cast<int>(d)));
}

}  // namespace

const SlotInfo& slot_info(Slot slot) { return SLOT_TABLE[slot_index(slot)]; }

std::pair<int64_t, int64_t> slot_shape(const io::ModelConfig& config, Slot slot) {
    const SlotInfo& s = slot_info(slot);
    return {dim_size(config, s.out), dim_size(config, s.in)};
}

bool slot_has_bias(const io::ModelConfig& config, Slot slot) {
    return config.attention_bias && slot_info(slot).attention_bias;
}

std::optional<Slot> slot_from_short_name(const std::string& short_name) {
    for (Slot s : PROJECTION_SLOTS)
        if (short_name == slot_info(s).short_name) return s;
    return std::nullopt;
}

std::string slot_short_names() {
    std::string out;
    for (Slot s : PROJECTION_SLOTS) out += std::string(out.empty() ? "" : ", ") + slot_info(s).short_name;
    return out;
}

const std::vector<std::vector<Slot>>& true_sequential_groups() {
    static const std::vector<std::vector<Slot>> groups = [] {
        std::vector<std::vector<Slot>> g;
        for (Slot s : PROJECTION_SLOTS) {
            const int i = slot_info(s).group;
            if ((int)g.size() <= i) g.resize(i + 1);
            g[i].push_back(s);
        }
        return g;
    }();
    return groups;
}

std::string name_embed() { return "model.embed_tokens.weight"; }
std::string name_final_norm() { return "model.norm.weight"; }
std::string name_lm_head() { return "lm_head.weight"; }
std::string name_block(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }
std::string name_linear(int64_t layer, Slot slot) {
    const SlotInfo& s = slot_info(slot);
    LOTA_ASSERT(s.parts.empty(), "%s is a fused product and has no checkpoint name", s.short_name);
    return name_block(layer) + s.path;
}
std::string name_input_norm(int64_t layer) { return name_block(layer) + "input_layernorm.weight"; }
std::string name_post_norm(int64_t layer) { return name_block(layer) + "post_attention_layernorm.weight"; }
std::string name_q_norm(int64_t layer) { return name_block(layer) + "self_attn.q_norm.weight"; }
std::string name_k_norm(int64_t layer) { return name_block(layer) + "self_attn.k_norm.weight"; }

}  // namespace lota::model
