// Batched answers (see answers.h).
#include "eval/answers.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include <torch/types.h>

#include "data/examples.h"
#include "dist/dist.h"
#include "util/check.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::eval {

namespace {

// Answers as bytes for Group::all_gather: per answer its text's length, the text (any bytes: a
// cut-off answer may end inside a UTF-8 character), prompt_tokens and new_tokens.
void answer_append(std::string& bytes, const Answer& a) {
    const int64_t fields[3] = {(int64_t)a.text.size(), a.prompt_tokens, a.new_tokens};
    bytes.append(reinterpret_cast<const char*>(&fields[0]), sizeof(int64_t));
    bytes += a.text;
    bytes.append(reinterpret_cast<const char*>(&fields[1]), 2 * sizeof(int64_t));
}

// Reads the answers of `bytes` into out[at...]; returns the index after the last one.
size_t answers_read(const std::string& bytes, std::vector<Answer>& out, size_t at) {
    size_t pos = 0;
    auto take = [&](void* dst, size_t n) {
        LOTA_ASSERT(pos + n <= bytes.size(), "answers: gathered %zu bytes, cut inside an answer", bytes.size());
        std::memcpy(dst, bytes.data() + pos, n);
        pos += n;
    };
    while (pos < bytes.size()) {
        LOTA_ASSERT(at < out.size(), "answers: gathered more answers than prompts (%zu)", out.size());
        int64_t len = 0;
        take(&len, sizeof len);
        LOTA_ASSERT(len >= 0 && (size_t)len <= bytes.size() - pos, "answers: bad gathered text length %lld",
                    (long long)len);
        Answer& a = out[at++];
        a.text.assign(bytes, pos, (size_t)len);
        pos += (size_t)len;
        take(&a.prompt_tokens, sizeof(int64_t));
        take(&a.new_tokens, sizeof(int64_t));
    }
    return at;
}

}  // namespace

std::vector<Answer> generate_answers(model::Transformer& model, const model::PromptText& text,
                                     const std::vector<data::TextPair>& pairs, const AnswerOptions& o,
                                     dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const torch::NoGradGuard no_grad;
    LOTA_CHECK(o.batch_size >= 1, "answers: batch size must be >= 1, got %lld", (long long)o.batch_size);
    // Data parallel: each rank answers a contiguous share of the batches one process would run
    // (batched generation may depend on which prompts share a batch: padding, the batch's length
    // cap), so each answer is the one one process gives; the answers are gathered in batch order.
    const int64_t n = (int64_t)pairs.size();
    const int64_t n_batches = (n + o.batch_size - 1) / o.batch_size;
    const auto [first_batch, last_batch] = dist::shard(n_batches, group.rank(), group.size());
    const size_t first = (size_t)std::min(n, first_batch * o.batch_size);
    const size_t last = (size_t)std::min(n, last_batch * o.batch_size);
    data::DataOptions render;
    render.source_max_len = o.source_max_len;
    std::vector<std::vector<int64_t>> prompts;  // of pairs [first, last)
    for (size_t i = first; i < last; ++i) {
        const data::Example e = data::example_make({pairs[i].prompt, ""}, text, render);
        prompts.emplace_back(e.ids.begin(), e.ids.begin() + e.n_source);
    }
    model::GenerateOptions gen = o.gen;
    if (gen.stop_ids.empty()) gen.stop_ids = text.stop_ids(model.config());
    std::vector<Answer> out(pairs.size());
    std::optional<Progress> progress;
    if (group.root()) progress.emplace("generate", (int64_t)prompts.size());
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
            Answer& a = out[first + b + i];
            a.prompt_tokens = (int64_t)batch[i].size();
            a.new_tokens = (int64_t)news[i].size();
            a.text = text.tokenizer().decode(std::vector<int32_t>(news[i].begin(), news[i].end()), true);
            new_tokens += a.new_tokens;
        }
        if (progress)
            progress->update((int64_t)e,
                             strfmt("%.1f new tok/s", double(new_tokens) / std::max(1e-9, progress->elapsed_s())));
    }
    if (group.single_process()) return out;
    std::string mine;
    for (size_t i = first; i < last; ++i) answer_append(mine, out[i]);
    size_t at = 0;
    for (const std::string& part : group.all_gather(mine, "gathering the answers")) at = answers_read(part, out, at);
    LOTA_ASSERT(at == out.size(), "answers: gathered %zu answers for %zu prompts", at, out.size());
    return out;
}

}  // namespace lota::eval
