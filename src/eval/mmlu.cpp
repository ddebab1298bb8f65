// MMLU scoring (see mmlu.h).
#include "eval/mmlu.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <optional>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "dist/dist.h"
#include "eval/mmlu_data.h"
#include "model/transformer.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::eval {
namespace {

const char* const kContinuations[4] = {" A", " B", " C", " D"};

// One model input. Choices whose inputs are equal share a row: with single-token continuations
// (" A".." D" in every tokenizer we know) a question needs one forward, not four.
struct Row {
    std::vector<int64_t> ids;
    std::vector<std::pair<size_t, int>> users;  // (question index in the subject, choice)
    size_t cont_max = 0;                        // longest continuation scored on this row
};

struct Scoring {
    std::vector<Row> rows;
    std::vector<std::array<std::vector<int64_t>, 4>> conts;  // per answer: continuation tokens
};

std::vector<int64_t> encode(const text::Tokenizer& tok, const std::string& s, bool special) {
    const std::vector<int32_t> ids = tok.encode(s, special);
    return {ids.begin(), ids.end()};
}

// Tokenizes the questions of one subject into rows; appends their answers (not yet scored).
void subject_tokenize(const MmluSubject& s, const text::Tokenizer& tok, const MmluOptions& o, int64_t max_len,
                      std::vector<MmluAnswer>& answers, Scoring& sc) {
    for (size_t qi = 0; qi < s.test.size(); ++qi) {
        const std::string prompt = mmlu_prompt(s, o.shots, s.test[qi]);
        const std::vector<int64_t> ctx = encode(tok, prompt, o.add_bos);
        MmluAnswer a;
        a.subject = s.name;
        a.index = (int64_t)qi;
        a.answer = s.test[qi].answer;
        a.tokens = (int64_t)ctx.size();
        const size_t ai = sc.conts.size();
        std::array<std::vector<int64_t>, 4> conts;
        std::vector<size_t> own_rows;  // rows of this question, for sharing
        for (int c = 0; c < 4; ++c) {
            std::vector<int64_t> full = encode(tok, prompt + kContinuations[c], o.add_bos);
            LOTA_CHECK(full.size() > ctx.size(), "mmlu: %s question %zu: continuation \"%s\" adds no tokens",
                       s.name.c_str(), qi, kContinuations[c]);
            conts[(size_t)c].assign(full.begin() + (int64_t)ctx.size(), full.end());
            full.erase(full.begin(), full.begin() + (int64_t)ctx.size());
            full.insert(full.begin(), ctx.begin(), ctx.end());  // lm-eval: context_enc + continuation_enc
            if ((int64_t)full.size() > max_len + 1) {           // keep the last max_len + 1, feed all but the last
                full.erase(full.begin(), full.end() - (max_len + 1));
                a.truncated = true;
            }
            full.pop_back();
            size_t r = 0;
            while (r < own_rows.size() && sc.rows[own_rows[r]].ids != full) ++r;
            if (r == own_rows.size()) {
                own_rows.push_back(sc.rows.size());
                sc.rows.push_back({std::move(full), {}, 0});
            }
            Row& row = sc.rows[own_rows[r]];
            row.users.emplace_back(ai, c);
            row.cont_max = std::max(row.cont_max, conts[(size_t)c].size());
        }
        sc.conts.push_back(std::move(conts));
        answers.push_back(std::move(a));
    }
}

// Runs `rows` (indices into sc.rows) as one right-padded batch and writes each choice's
// log-likelihood into answers[question]. Only the last cont_max positions of a row go through the LM head.
void batch_score(model::Transformer& model, const Scoring& sc, const std::vector<size_t>& rows,
                 MmluAnswer* answers) {
    const int64_t B = (int64_t)rows.size();
    int64_t T = 0;
    for (size_t r : rows) T = std::max<int64_t>(T, (int64_t)sc.rows[r].ids.size());
    at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
    std::vector<int64_t> pick_b, pick_t;  // (row in batch, position) whose logits are needed
    for (int64_t b = 0; b < B; ++b) {
        const Row& row = sc.rows[rows[(size_t)b]];
        const int64_t L = (int64_t)row.ids.size();
        ids[b].narrow(0, 0, L).copy_(at::tensor(row.ids, at::kLong));
        mask[b].narrow(0, 0, L).fill_(1);
        for (int64_t t = L - (int64_t)row.cont_max; t < L; ++t) {
            pick_b.push_back(b);
            pick_t.push_back(t);
        }
    }
    ids = ids.to(model.device());
    const model::ForwardContext ctx = model.prepare(ids, mask.to(model.device()), nullptr);
    at::Tensor h = model.embed(ids);
    for (int64_t l = 0; l < (int64_t)model.blocks().size(); ++l) h = model.block_forward(l, h, ctx);
    const auto opts = at::TensorOptions().dtype(at::kLong).device(model.device());
    h = h.index({at::tensor(pick_b, opts), at::tensor(pick_t, opts)});  // [N, C]
    const at::Tensor logp = at::log_softmax(model.head(h.unsqueeze(0)).squeeze(0).to(at::kFloat), -1).cpu();
    const auto lp = logp.accessor<float, 2>();
    int64_t offset = 0;  // first picked position of the current row
    for (size_t r : rows) {
        const Row& row = sc.rows[r];
        for (const auto& [ai, c] : row.users) {
            const std::vector<int64_t>& cont = sc.conts[ai][(size_t)c];
            double sum = 0;  // the logit at t predicts token t+1: cont is the last tokens of ids ++ [last]
            for (size_t j = 0; j < cont.size(); ++j)
                sum += lp[offset + (int64_t)(row.cont_max - cont.size() + j)][cont[j]];
            answers[ai].loglik[(size_t)c] = sum;
        }
        offset += (int64_t)row.cont_max;
    }
}

// One batch as one process cuts it: rows of one subject's Scoring.
struct BatchRef {
    size_t subject = 0;
    std::vector<size_t> rows;
};

// Calls fn(question, choice) for every choice scored by `rows`, in a fixed order.
template <typename Fn>
void for_each_choice(const Scoring& sc, const std::vector<size_t>& rows, Fn fn) {
    for (size_t r : rows)
        for (const auto& [ai, c] : sc.rows[r].users) fn(ai, c);
}

// Category and overall scores from the per-subject ones.
void result_aggregate(MmluResult& r) {
    const std::vector<std::string>& names = mmlu_categories();
    for (const std::string& c : names) r.categories.push_back({c});
    r.all.name = "all";
    for (size_t i = 0; i < r.subjects.size(); ++i) {
        const size_t c = (size_t)(std::find(names.begin(), names.end(), r.subject_categories[i]) - names.begin());
        r.categories[c].n += r.subjects[i].n;
        r.categories[c].correct += r.subjects[i].correct;
        r.all.n += r.subjects[i].n;
        r.all.correct += r.subjects[i].correct;
    }
    int64_t with_questions = 0;
    for (const MmluScore& c : r.categories) {
        if (c.n == 0) continue;
        r.category_mean += c.acc();
        ++with_questions;
    }
    if (with_questions > 0) r.category_mean /= double(with_questions);
}

}  // namespace

MmluResult mmlu_eval(model::Transformer& model, const text::Tokenizer& tok, const MmluOptions& o,
                     dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const auto t0 = std::chrono::steady_clock::now();
    const torch::NoGradGuard no_grad;
    LOTA_CHECK(o.batch_size >= 1, "mmlu: batch size must be >= 1, got %lld", (long long)o.batch_size);
    MmluResult r;
    r.max_len = o.max_len > 0 ? o.max_len : model.config().max_position_embeddings;
    LOTA_CHECK(r.max_len >= 2, "mmlu: max_len must be >= 2 tokens, got %lld", (long long)r.max_len);
    const std::vector<MmluSubject> subjects = mmlu_load(o.data, o.subjects, o.shots, o.limit);
    // Every question is tokenized first; then each subject's rows are cut into batches, longest
    // first as lm-eval does (little padding, and the slowest batches set the ETA early).
    std::vector<Scoring> scorings(subjects.size());
    std::vector<size_t> first_answer(subjects.size());
    std::vector<BatchRef> batches;
    for (size_t s = 0; s < subjects.size(); ++s) {
        first_answer[s] = r.answers.size();
        Scoring& sc = scorings[s];
        subject_tokenize(subjects[s], tok, o, r.max_len, r.answers, sc);
        std::vector<size_t> order(sc.rows.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return sc.rows[a].ids.size() > sc.rows[b].ids.size(); });
        for (size_t b = 0; b < order.size(); b += (size_t)o.batch_size) {
            const size_t e = std::min(order.size(), b + (size_t)o.batch_size);
            batches.push_back({s, std::vector<size_t>(order.begin() + (int64_t)b, order.begin() + (int64_t)e)});
        }
    }
    // Data parallel: each rank scores a contiguous share of these batches, which are the same
    // whatever the number of ranks (so each log-likelihood is the bits one process computes), and
    // the log-likelihoods are gathered in batch order.
    const auto [first, last] = dist::shard((int64_t)batches.size(), group.rank(), group.size());
    std::optional<Progress> progress;
    if (group.root()) progress.emplace("mmlu", last - first);
    std::vector<double> mine;
    for (int64_t bi = first; bi < last; ++bi) {
        const BatchRef& b = batches[(size_t)bi];
        MmluAnswer* answers = r.answers.data() + first_answer[b.subject];
        batch_score(model, scorings[b.subject], b.rows, answers);
        for_each_choice(scorings[b.subject], b.rows,
                        [&](size_t ai, int c) { mine.push_back(answers[ai].loglik[(size_t)c]); });
        if (progress) progress->update(bi - first + 1, subjects[b.subject].name);
    }
    const std::vector<double> all = group.all_gather_doubles(mine, "gathering the MMLU log-likelihoods");
    size_t k = 0;
    for (const BatchRef& b : batches) {
        MmluAnswer* answers = r.answers.data() + first_answer[b.subject];
        for_each_choice(scorings[b.subject], b.rows, [&](size_t ai, int c) {
            LOTA_ASSERT(k < all.size(), "mmlu: gathered %zu log-likelihoods, expected more", all.size());
            answers[ai].loglik[(size_t)c] = all[k++];
        });
    }
    LOTA_ASSERT(k == all.size(), "mmlu: gathered %zu log-likelihoods, expected %zu", all.size(), k);
    for (size_t s = 0; s < subjects.size(); ++s) {
        MmluScore score{subjects[s].name};
        const size_t end = s + 1 < subjects.size() ? first_answer[s + 1] : r.answers.size();
        for (size_t i = first_answer[s]; i < end; ++i) {
            MmluAnswer& a = r.answers[i];
            a.predicted = (int)(std::max_element(a.loglik.begin(), a.loglik.end()) - a.loglik.begin());
            ++score.n;
            score.correct += a.predicted == a.answer;
            r.truncated += a.truncated;
        }
        r.subjects.push_back(score);
        r.subject_categories.push_back(mmlu_subject_category(subjects[s].name));
    }
    result_aggregate(r);
    if (r.truncated > 0 && group.root())
        LOTA_LOG_WARN("mmlu: %lld prompts were longer than %lld tokens and were cut from the left",
                      (long long)r.truncated, (long long)r.max_len);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace lota::eval
