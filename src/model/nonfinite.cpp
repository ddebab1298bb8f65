// Locating the first non-finite activation of a forward pass (see nonfinite.h).
#include "model/nonfinite.h"

#include <ATen/ATen.h>
#include <torch/types.h>

#include "util/strfmt.h"

namespace lota::model {
namespace {

bool finite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

}  // namespace

std::string nonfinite_find_forward(Transformer& model, const at::Tensor& ids, const at::Tensor& mask) {
    torch::NoGradGuard no_grad;
    const at::Tensor ids_dev = ids.to(model.device());
    const ForwardContext ctx = model.prepare(ids_dev, mask, nullptr);
    at::Tensor h = model.embed(ids_dev);
    if (!finite(h)) return "output of the token embedding (model.embed_tokens)";
    for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
        h = model.block_forward(l, h, ctx);
        if (!finite(h)) return strfmt("output of block %lld (model.layers.%lld)", (long long)l, (long long)l);
    }
    if (!finite(model.final_norm(h))) return "output of the final norm (model.norm)";
    for (const at::Tensor& rows : h.split(64, 1))  // logits a few positions at a time: [B, 64, V]
        if (!finite(model.head(rows))) return "logits (lm_head)";
    return "";
}

}  // namespace lota::model
