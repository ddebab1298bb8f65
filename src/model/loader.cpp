// Transformer::load: reads config.json and the safetensors of an HF model directory, checks
// every tensor's shape against the config, and builds the blocks on the requested device/dtype.
#include <ATen/ATen.h>

#include "io/finite_check.h"
#include "io/gptq_checkpoint.h"
#include "io/model_files.h"
#include "model/arch.h"
#include "model/linear_loader.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/log.h"

namespace lota::model {

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, const LoadOptions& options) {
    const at::Device device = device_from_name(options.device);
    const at::ScalarType dtype = dtype_from_name(options.dtype);
    io::ModelConfig cfg = io::hf_config_read(dir + "/config.json");
    const std::optional<io::GptqConfig> gptq = io::gptq_config_read(dir);
    io::ModelFiles files(dir);
    const std::string cfg_path = dir + "/config.json";
    // Every float tensor, as converted for compute, must be finite: one pass on the device, one read back.
    io::FiniteCheck finite;
    auto load_dense = [&](const std::string& name, std::vector<int64_t> shape, const std::string& why) {
        at::Tensor t = files.load_checked(name, shape, why + " from " + cfg_path).to(device, dtype);
        finite.add(t, files.file_of(name), name);
        return t;
    };
    const int64_t C = cfg.hidden_size;
    at::Tensor embed = load_dense(name_embed(), {cfg.vocab_size, C}, "vocab_size x hidden_size");
    std::vector<Block> blocks;
    std::vector<LinearPtr> all;
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        Block b;
        for (Slot s : PROJECTION_SLOTS) {
            const auto [out, in] = slot_shape(cfg, s);
            const LinearSpec spec{name_linear(l, s), in, out, slot_has_bias(cfg, s), cfg_path};
            b.linear(s) = linear_load(files, gptq, spec, device, dtype, &finite);
            all.push_back(b.linear(s));
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
    finite.check();
    // Quantized layers dequantize into one shared scratch buffer (never a 16-bit copy of the model).
    quant_linears_share_buffer(all);
    LOTA_LOG_DEBUG("loaded %s: %lld layers on %s", dir.c_str(), (long long)cfg.num_hidden_layers,
                   options.device.c_str());
    return std::make_unique<Transformer>(std::move(cfg), embed, std::move(blocks), norm, lm_head, device, dtype);
}

}  // namespace lota::model
