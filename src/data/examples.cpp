// Tokenization, collation and ordering of fine-tuning data (data.h).
#include "data/examples.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "io/mapped_file.h"
#include "util/check.h"

namespace lota::data {
namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& v) { return std::vector<int64_t>(v.begin(), v.end()); }

std::string plain_source(const nlohmann::json& prompt) {
    std::string s;
    for (const auto& m : prompt) {
        const std::string c = m.value("content", std::string());
        if (c.empty()) continue;
        s += (s.empty() ? "" : "\n\n") + c;
    }
    return s;
}

}  // namespace

Example example_make(const TextPair& pair, const model::PromptText& text, const DataOptions& o) {
    const text::Tokenizer& tok = text.tokenizer();
    std::vector<int64_t> src, tgt;
    if (!tok.chat_template().empty()) {
        src = text.encode_chat(pair.prompt, true);
        nlohmann::json full_msgs = pair.prompt;
        full_msgs.push_back({{"role", "assistant"}, {"content", pair.target}});
        const std::vector<int64_t> full = text.encode_chat(full_msgs, false);
        if (full.size() > src.size() && std::equal(src.begin(), src.end(), full.begin())) {
            tgt.assign(full.begin() + (int64_t)src.size(), full.end());
        } else {
            // The template renders the prompt differently with an answer (rare): fall back to the
            // answer's own tokens and EOS after the generation prompt.
            tgt = widen(tok.encode(pair.target, false));
            if (tok.eos_id() >= 0) tgt.push_back(tok.eos_id());
        }
    } else {
        src = widen(tok.encode("### Instruction:\n" + plain_source(pair.prompt) + "\n\n### Response:\n", true));
        tgt = widen(tok.encode(pair.target, false));
        if (tok.eos_id() >= 0) tgt.push_back(tok.eos_id());
    }
    if ((int64_t)src.size() > o.source_max_len) src.resize((size_t)o.source_max_len);
    if ((int64_t)tgt.size() > o.target_max_len) tgt.resize((size_t)o.target_max_len);
    Example e;
    e.n_source = (int64_t)src.size();
    e.ids = std::move(src);
    e.ids.insert(e.ids.end(), tgt.begin(), tgt.end());
    return e;
}

std::vector<Example> data_load(const DataOptions& o, const model::PromptText& text) {
    LOTA_CHECK(o.source_max_len >= 1 && o.target_max_len >= 1,
               "--source-max-len and --target-max-len must be >= 1 (got %lld, %lld)", (long long)o.source_max_len,
               (long long)o.target_max_len);
    const DataFormat format = data_format_from_name(o.format);
    std::vector<Example> out;
    if (format == DataFormat::TEXT) {
        const std::vector<int64_t> all = widen(text.tokenizer().encode(io::file_read_text(o.path), true));
        const int64_t w = std::max<int64_t>(o.source_max_len, 2);
        for (size_t i = 0; i + 1 < all.size(); i += (size_t)w) {
            Example e;
            e.ids.assign(all.begin() + (int64_t)i, all.begin() + (int64_t)std::min(all.size(), i + (size_t)w));
            if (e.ids.size() >= 2) out.push_back(std::move(e));
        }
        LOTA_CHECK(!out.empty(), "%s: not enough text for one window of 2 tokens", o.path.c_str());
        return out;
    }
    for (const TextPair& p : data_read_pairs(o.path, format)) {
        out.push_back(example_make(p, text, o));
        LOTA_CHECK((int64_t)out.back().ids.size() > out.back().n_source, "%s: example %zu has an empty target",
                   o.path.c_str(), out.size() - 1);
    }
    return out;
}

Batch batch_collate(const std::vector<const Example*>& examples) {
    LOTA_CHECK(!examples.empty(), "batch_collate: empty micro-batch");
    int64_t T = 0;
    for (const Example* e : examples) T = std::max<int64_t>(T, (int64_t)e->ids.size());
    const int64_t B = (int64_t)examples.size();
    Batch b;
    b.ids = at::zeros({B, T}, at::kLong);
    b.mask = at::zeros({B, T}, at::kLong);
    b.labels = at::full({B, T}, -100, at::kLong);
    auto ids = b.ids.accessor<int64_t, 2>(), mask = b.mask.accessor<int64_t, 2>(), lab = b.labels.accessor<int64_t, 2>();
    for (int64_t i = 0; i < B; ++i) {
        const Example& e = *examples[i];
        for (int64_t t = 0; t < (int64_t)e.ids.size(); ++t) {
            ids[i][t] = e.ids[t];
            mask[i][t] = 1;
            if (t >= e.n_source && t >= 1) {
                lab[i][t] = e.ids[t];
                ++b.n_label_tokens;
            }
        }
    }
    return b;
}

BatchTargets batch_targets(const Batch& batch) {
    const int64_t B = batch.labels.size(0), T = batch.labels.size(1);
    const at::Tensor next = at::cat({batch.labels.slice(1, 1, T), at::full({B, 1}, -100, batch.labels.options())}, 1)
                                .reshape({-1});
    BatchTargets r;
    r.rows = next.ne(-100).nonzero().squeeze(1);
    r.targets = next.index_select(0, r.rows);
    return r;
}

DataOrder::DataOrder(int64_t n_examples, uint64_t seed) : n_(n_examples), seed_(seed) {
    LOTA_CHECK(n_examples > 0, "no training examples");
}

const std::vector<int64_t>& DataOrder::epoch_perm(int64_t epoch) {
    if (epoch != cached_epoch_) {
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL + (uint64_t)epoch);
        const at::Tensor p = at::randperm(n_, gen, at::kLong);
        perm_.assign(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + n_);
        cached_epoch_ = epoch;
    }
    return perm_;
}

std::vector<int64_t> DataOrder::take(int64_t count) {
    std::vector<int64_t> out;
    for (int64_t i = 0; i < count; ++i, ++position_) out.push_back(epoch_perm(position_ / n_)[position_ % n_]);
    return out;
}

}  // namespace lota::data
