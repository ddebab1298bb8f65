// Perplexity (see perplexity.h).
#include "eval/perplexity.h"

#include <chrono>
#include <cmath>
#include <optional>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "dist/dist.h"
#include "eval/kl.h"
#include "io/mapped_file.h"
#include "model/nonfinite.h"
#include "model/transformer.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::eval {

PerplexityResult perplexity_eval(model::Transformer& model, const text::Tokenizer& tok, const PerplexityOptions& o,
                                 model::Transformer* reference, dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const auto t0 = std::chrono::steady_clock::now();
    const torch::NoGradGuard no_grad;
    LOTA_CHECK(o.seqlen > 1, "perplexity: seqlen must be > 1, got %lld", (long long)o.seqlen);
    const std::vector<int32_t> ids32 = tok.encode(io::file_read_text(o.data), false);
    const int64_t total = static_cast<int64_t>(ids32.size());
    LOTA_CHECK(total >= 2, "%s: text has %lld tokens, need at least 2", o.data.c_str(), (long long)total);
    int64_t L = o.seqlen;
    if (total < L) {
        LOTA_LOG_WARN("%s: text has only %lld tokens < seqlen %lld; evaluating one window of %lld", o.data.c_str(),
                      (long long)total, (long long)L, (long long)total);
        L = total;
    }
    int64_t windows = total / L;
    if (o.max_windows > 0) windows = std::min(windows, o.max_windows);
    const at::Tensor ids = at::tensor(std::vector<int64_t>(ids32.begin(), ids32.begin() + windows * L), at::kLong)
                               .view({windows, L});
    model.ids_check(ids);
    if (reference != nullptr) kl_reference_check(*reference, model, "perplexity");
    // Data parallel: each rank scores its contiguous share of the windows; the per-window sums are
    // gathered and added in window order, as one process adds them.
    const auto [first, last] = dist::shard(windows, group.rank(), group.size());
    std::vector<double> nll_w, kl_w;
    double nll_sum = 0, kl_sum = 0;
    std::optional<Progress> progress;
    if (group.root()) progress.emplace("ppl", last - first);
    for (int64_t w = first; w < last; ++w) {
        const at::Tensor x = ids.narrow(0, w, 1).to(model.device());
        const at::Tensor logits = model.forward(x).to(at::kFloat).squeeze(0);  // [L, V]
        const at::Tensor logp = at::log_softmax(logits.narrow(0, 0, L - 1), -1);
        const at::Tensor target = x.squeeze(0).narrow(0, 1, L - 1).unsqueeze(1);
        nll_w.push_back(logp.gather(1, target).sum().item<double>());
        if (!std::isfinite(nll_w.back())) {
            const std::string where = model::nonfinite_find_forward(model, x, {});
            LOTA_FAIL("perplexity: window %lld of %s: the loss is %s (not finite); first non-finite tensor: %s",
                      (long long)w, o.data.c_str(), std::isnan(nll_w.back()) ? "nan" : "inf",
                      where.empty() ? "none found on a rerun" : where.c_str());
        }
        nll_sum -= nll_w.back();
        const double done = double((w - first + 1) * (L - 1));
        std::string status = strfmt("ppl %.4f", std::exp(nll_sum / done));
        if (reference != nullptr) {
            // The model as its own reference: KL is 0 exactly, no second forward.
            if (reference == &model) {
                kl_w.push_back(0.0);
            } else {
                const at::Tensor ref_logp =
                    reference_logp(*reference, x, {}, logp.device()).squeeze(0).narrow(0, 0, L - 1);
                kl_w.push_back(kl_per_position(ref_logp, logp).sum().item<double>());
            }
            kl_sum += kl_w.back();
            status += strfmt(" | KL %.5f", kl_sum / done);
        }
        if (progress) progress->update(w - first + 1, status);
    }
    nll_w = group.all_gather_doubles(nll_w, "gathering the window losses");
    if (reference != nullptr) kl_w = group.all_gather_doubles(kl_w, "gathering the window KL divergences");
    nll_sum = kl_sum = 0;
    for (const double v : nll_w) nll_sum -= v;
    for (const double v : kl_w) kl_sum += v;
    PerplexityResult r;
    r.windows = windows;
    r.tokens = windows * (L - 1);
    r.text_tokens = total;
    r.mean_nll = nll_sum / double(r.tokens);
    r.ppl = std::exp(r.mean_nll);
    if (reference != nullptr) r.kl = kl_sum / double(r.tokens);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace lota::eval
