// Merge verification (verify.h).
#include "merge/verify.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "adapter/attach.h"
#include "io/adapter.h"
#include "model/transformer.h"
#include "util/check.h"

namespace lota::merge {

at::Tensor logits_compute(const std::string& model_dir, const std::string& adapter_dir, const at::Tensor& ids,
                          const at::Tensor& mask, const model::LoadOptions& load) {
    at::NoGradGuard no_grad;
    auto model = model::Transformer::load(model_dir, load);
    if (!adapter_dir.empty()) adapter::adapter_apply(*model, io::adapter_read(adapter_dir), adapter_dir);
    const at::Device device = model->device();
    return model->forward(ids.to(device), mask.to(device)).to(at::kFloat).cpu().contiguous();
}

std::pair<at::Tensor, at::Tensor> verify_inputs(int64_t batch, int64_t len, int64_t vocab, uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor ids = at::randint(0, vocab, {batch, len}, gen, at::TensorOptions().dtype(at::kLong));
    at::Tensor mask = at::ones({batch, len}, at::kLong);
    if (batch > 1 && len > 1) {
        mask[batch - 1].slice(0, len / 2, len).fill_(0);
        ids[batch - 1].slice(0, len / 2, len).fill_(0);
    }
    return {ids, mask};
}

void logits_require_equal(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
    LOTA_CHECK(a.sizes() == b.sizes(), "%s: logits shapes differ", what.c_str());
    if (at::equal(a, b)) return;
    const at::Tensor diff = (a - b).abs().reshape({-1});
    const int64_t n_diff = a.reshape({-1}).ne(b.reshape({-1})).sum().item<int64_t>();
    const int64_t i = diff.argmax().item<int64_t>();
    LOTA_FAIL("%s: logits are not bit-identical: %lld of %lld elements differ; worst at flat index %lld: %.9g vs %.9g",
              what.c_str(), (long long)n_diff, (long long)a.numel(), (long long)i,
              a.reshape({-1})[i].item<double>(), b.reshape({-1})[i].item<double>());
}

}  // namespace lota::merge
