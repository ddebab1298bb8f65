// KL from a reference model (see kl.h).
#include "eval/kl.h"

#include <ATen/ATen.h>

#include "model/transformer.h"
#include "util/check.h"

namespace lota::eval {

void kl_reference_check(const model::Transformer& reference, const model::Transformer& model, const char* what) {
    LOTA_CHECK(reference.config().vocab_size == model.config().vocab_size,
               "%s: the KL reference has vocab_size %lld, the model %lld", what,
               (long long)reference.config().vocab_size, (long long)model.config().vocab_size);
}

at::Tensor kl_per_position(const at::Tensor& ref_logp, const at::Tensor& logp) {
    return (ref_logp.exp() * (ref_logp - logp)).sum(-1);
}

at::Tensor reference_logp(model::Transformer& reference, const at::Tensor& ids, const at::Tensor& mask,
                          const at::Device& device) {
    const at::Tensor m = mask.defined() ? mask.to(reference.device()) : at::Tensor();
    return at::log_softmax(reference.forward(ids.to(reference.device()), m).to(at::kFloat).to(device), -1);
}

at::Tensor scored_logp(model::Transformer& model, const at::Tensor& ids, const at::Tensor& mask,
                       const at::Tensor& rows, const at::Device& device) {
    const at::Tensor m = mask.defined() ? mask.to(model.device()) : at::Tensor();
    const at::Tensor h = model.forward_hidden(ids.to(model.device()), m);
    const at::Tensor logits = model.head(h.reshape({-1, h.size(-1)}).index_select(0, rows.to(model.device())));
    return at::log_softmax(logits.to(at::kFloat).to(device), -1);
}

}  // namespace lota::eval
