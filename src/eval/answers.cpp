// Batched answers (see answers.h).
#include "eval/answers.h"

#include <algorithm>

#include <torch/types.h>

#include "data/examples.h"
#include "util/check.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::eval {

std::vector<Answer> generate_answers(model::Transformer& model, const model::PromptText& text,
                                     const std::vector<data::TextPair>& pairs, const AnswerOptions& o) {
    const torch::NoGradGuard no_grad;
    LOTA_CHECK(o.batch_size >= 1, "answers: batch size must be >= 1, got %lld", (long long)o.batch_size);
    data::DataOptions render;
    render.source_max_len = o.source_max_len;
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& p : pairs) {
        const data::Example e = data::example_make({p.prompt, ""}, text, render);
        prompts.emplace_back(e.ids.begin(), e.ids.begin() + e.n_source);
    }
    model::GenerateOptions gen = o.gen;
    if (gen.stop_ids.empty()) gen.stop_ids = text.stop_ids(model.config());
    std::vector<Answer> out(pairs.size());
    Progress progress("generate", (int64_t)pairs.size());
    int64_t new_tokens = 0;
    for (size_t b = 0; b < prompts.size(); b += (size_t)o.batch_size) {
        const size_t e = std::min(prompts.size(), b + (size_t)o.batch_size);
        const std::vector<std::vector<int64_t>> batch(prompts.begin() + (int64_t)b, prompts.begin() + (int64_t)e);
        if (o.max_total_len > 0) {
            size_t longest = 0;
            for (const auto& p : batch) longest = std::max(longest, p.size());
            gen.max_new_tokens = std::min<int64_t>(o.gen.max_new_tokens, std::max<int64_t>(1, o.max_total_len - (int64_t)longest));
        }
        const auto news = model::generate(model, batch, gen);
        for (size_t i = 0; i < news.size(); ++i) {
            Answer& a = out[b + i];
            a.prompt_tokens = (int64_t)batch[i].size();
            a.new_tokens = (int64_t)news[i].size();
            a.text = text.tokenizer().decode(std::vector<int32_t>(news[i].begin(), news[i].end()), true);
            new_tokens += a.new_tokens;
        }
        progress.update((int64_t)e, strfmt("%.1f new tok/s", double(new_tokens) / std::max(1e-9, progress.elapsed_s())));
    }
    return out;
}

}  // namespace lota::eval
