// Transformer::load: reads config.json and the safetensors of an HF model directory, checks
// every tensor's shape against the config, and builds the blocks on the requested device/dtype.
#include <sys/stat.h>

#include <ATen/ATen.h>

#include "io/model_files.h"
#include "model/arch.h"
#include "model/linear_loader.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/log.h"

namespace lota::model {
namespace {

/// [out, in] of each projection in linear_slots() order.
std::pair<int64_t, int64_t> slot_shape(const io::ModelConfig& c, size_t slot) {
    const int64_t C = c.hidden_size, I = c.intermediate_size;
    const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
    switch (slot) {
        case 0: return {q, C};
        case 1: case 2: return {kv, C};
        case 3: return {C, q};
        case 4: case 5: return {I, C};
        default: return {C, I};
    }
}

}  // namespace

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, const LoadOptions& options) {
    const at::Device device = device_from_name(options.device);
    const at::ScalarType dtype = dtype_from_name(options.dtype);
    io::ModelConfig cfg = io::hf_config_read(dir + "/config.json");
    io::ModelFiles files(dir);
    const std::string cfg_path = dir + "/config.json";
    auto load_dense = [&](const std::string& name, std::vector<int64_t> shape, const std::string& why) {
        return files.load_checked(name, shape, why + " from " + cfg_path).to(device, dtype);
    };
    const int64_t C = cfg.hidden_size;
    at::Tensor embed = load_dense(name_embed(), {cfg.vocab_size, C}, "vocab_size x hidden_size");
    std::vector<Block> blocks;
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        Block b;
        for (size_t s = 0; s < linear_slots().size(); ++s) {
            auto [out, in] = slot_shape(cfg, s);
            bool bias = cfg.attention_bias && s < 3;
            b.linears.push_back(linear_load(files, cfg, cfg_path, name_linear(l, linear_slots()[s]), in, out, bias,
                                            device, dtype));
        }
        b.input_norm = load_dense(name_input_norm(l), {C}, "hidden_size");
        b.post_norm = load_dense(name_post_norm(l), {C}, "hidden_size");
        if (cfg.qk_norm) {
            b.q_norm = load_dense(name_q_norm(l), {cfg.head_dim}, "head_dim");
            b.k_norm = load_dense(name_k_norm(l), {cfg.head_dim}, "head_dim");
        }
        blocks.push_back(std::move(b));
    }
    at::Tensor norm = load_dense(name_final_norm(), {C}, "hidden_size");
    at::Tensor lm_head;
    if (cfg.tie_word_embeddings) {
        lm_head = embed;
    } else {
        lm_head = load_dense(name_lm_head(), {cfg.vocab_size, C}, "vocab_size x hidden_size; tie_word_embeddings false");
    }
    // Quantized layers dequantize into one shared scratch buffer (never a 16-bit copy of the model).
    std::vector<LinearPtr> all;
    for (const auto& b : blocks) all.insert(all.end(), b.linears.begin(), b.linears.end());
    quant_linears_share_buffer(all);
    LOTA_LOG_DEBUG("loaded %s: %lld layers on %s", dir.c_str(), (long long)cfg.num_hidden_layers,
                   options.device.c_str());
    return std::make_unique<Transformer>(std::move(cfg), embed, std::move(blocks), norm, lm_head, device, dtype);
}

}  // namespace lota::model
