// Held-out loss (see heldout_loss.h).
#include "eval/heldout_loss.h"

#include <chrono>
#include <cmath>
#include <optional>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "dist/dist.h"
#include "eval/kl.h"
#include "model/prompt.h"
#include "model/nonfinite.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::eval {

HeldoutLossResult heldout_loss_eval(model::Transformer& model, const std::string& model_dir,
                                    const HeldoutLossOptions& o, model::Transformer* reference, dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const auto t0 = std::chrono::steady_clock::now();
    const torch::NoGradGuard no_grad;
    LOTA_CHECK(o.batch_size >= 1, "loss: batch size must be >= 1, got %lld", (long long)o.batch_size);
    if (reference != nullptr) kl_reference_check(*reference, model, "loss");
    const model::PromptText text(model_dir);
    std::vector<data::Example> data = data::data_load(o.data, text);
    if (o.limit > 0 && (int64_t)data.size() > o.limit) data.resize((size_t)o.limit);
    HeldoutLossResult r;
    // Data parallel: each rank scores a contiguous share of the batches (cut as one process cuts
    // them); the per-batch sums are gathered and added in batch order, as one process adds them.
    const int64_t n_batches = ((int64_t)data.size() + o.batch_size - 1) / o.batch_size;
    const auto [first, last] = dist::shard(n_batches, group.rank(), group.size());
    std::vector<double> per_batch;  // nll, kl, tokens, examples of each batch
    double nll_sum = 0, kl_sum = 0;
    std::optional<Progress> progress;
    if (group.root()) progress.emplace("loss", std::min<int64_t>((int64_t)data.size(), last * o.batch_size) -
                                                   std::min<int64_t>((int64_t)data.size(), first * o.batch_size));
    for (int64_t bi = first; bi < last; ++bi) {
        const size_t b = (size_t)(bi * o.batch_size);
        std::vector<const data::Example*> ex;
        for (size_t i = b; i < std::min(data.size(), b + (size_t)o.batch_size); ++i) ex.push_back(&data[i]);
        const data::Batch batch = data::batch_collate(ex);
        model.ids_check(batch.ids);
        const at::Tensor ids = batch.ids.to(model.device()), mask = batch.mask.to(model.device());
        // Only the scored positions (answer tokens) reach the LM head, of both models.
        const data::BatchTargets scored = data::batch_targets(batch);
        const int64_t batch_tokens = scored.rows.size(0);
        double batch_nll = 0, batch_kl = 0;
        if (batch_tokens > 0) {
            const at::Tensor rows = scored.rows.to(model.device());
            const at::Tensor logp = scored_logp(model, ids, mask, rows, model.device());
            const at::Tensor target = scored.targets.to(logp.device()).unsqueeze(1);
            batch_nll = -logp.gather(1, target).sum().item<double>();
            if (!std::isfinite(batch_nll)) {
                const std::string where = model::nonfinite_find_forward(model, batch.ids, batch.mask);
                LOTA_FAIL("loss: examples %zu to %zu of %s: the loss is %s (not finite); first non-finite tensor: %s",
                          b, b + ex.size() - 1, o.data.path.c_str(), std::isnan(batch_nll) ? "nan" : "inf",
                          where.empty() ? "none found on a rerun" : where.c_str());
            }
            // The model as its own reference: KL is 0 exactly, no second forward.
            if (reference != nullptr && reference != &model)
                batch_kl = kl_per_position(scored_logp(*reference, ids, mask, rows, logp.device()), logp).sum().item<double>();
        }
        per_batch.insert(per_batch.end(), {batch_nll, batch_kl, (double)batch_tokens, (double)ex.size()});
        nll_sum += batch_nll;
        kl_sum += batch_kl;
        r.tokens += batch_tokens;
        r.examples += (int64_t)ex.size();
        std::string status = strfmt("loss %.4f", nll_sum / double(std::max<int64_t>(1, r.tokens)));
        if (reference != nullptr) status += strfmt(" | KL %.5f", kl_sum / double(std::max<int64_t>(1, r.tokens)));
        if (progress) progress->update(r.examples, status);
    }
    per_batch = group.all_gather_doubles(per_batch, "gathering the batch losses");
    nll_sum = kl_sum = 0;
    r.tokens = r.examples = 0;
    for (size_t i = 0; i < per_batch.size(); i += 4) {
        nll_sum += per_batch[i];
        kl_sum += per_batch[i + 1];
        r.tokens += (int64_t)per_batch[i + 2];
        r.examples += (int64_t)per_batch[i + 3];
    }
    LOTA_CHECK(r.tokens > 0, "%s: no answer tokens to score", o.data.path.c_str());
    r.mean_nll = nll_sum / double(r.tokens);
    r.ppl = std::exp(r.mean_nll);
    if (reference != nullptr) r.kl = kl_sum / double(r.tokens);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace lota::eval
