// BPE model (see bpe.h). The merge loop mirrors HF tokenizers' Word::merge_all: a min-queue of
// (rank, position) candidates; a popped candidate is stale when its left symbol was consumed or
// the pair at its position no longer produces the same token.
#include "text/bpe.h"

#include <cstdio>
#include <queue>

#include "text/unicode.h"
#include "util/check.h"

namespace lota::text {
namespace {

constexpr size_t k_cache_capacity = 10000;
constexpr size_t k_cache_max_word = 256;

uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

std::optional<std::string> optional_string(const nlohmann::json& j, const char* key, const std::string& file) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    LOTA_CHECK(it->is_string(), "%s: model.%s must be a string or null", file.c_str(), key);
    return it->get<std::string>();
}

bool optional_bool(const nlohmann::json& j, const char* key, const std::string& file) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return false;
    LOTA_CHECK(it->is_boolean(), "%s: model.%s must be a boolean", file.c_str(), key);
    return it->get<bool>();
}

struct Symbol {
    int32_t id;
    int64_t prev, next;
    size_t len;  // bytes of the word covered; 0 once merged into its left neighbour
};

struct Candidate {
    uint32_t rank;
    size_t pos;
    int32_t new_id;
    // std::priority_queue pops the largest: invert so the lowest (rank, pos) comes first.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

std::shared_ptr<const Bpe> Bpe::from_json(const nlohmann::json& model, const std::string& file) {
    auto bpe = std::make_shared<Bpe>();
    bpe->file_ = file;
    auto dropout = model.find("dropout");
    if (dropout != model.end() && !dropout->is_null()) {
        LOTA_CHECK(dropout->is_number() && dropout->get<double>() == 0.0,
                   "%s: BPE dropout is not supported (only null or 0)", file.c_str());
    }
    bpe->unk_token_ = optional_string(model, "unk_token", file);
    bpe->prefix_ = optional_string(model, "continuing_subword_prefix", file);
    bpe->suffix_ = optional_string(model, "end_of_word_suffix", file);
    bpe->fuse_unk_ = optional_bool(model, "fuse_unk", file);
    bpe->byte_fallback_ = optional_bool(model, "byte_fallback", file);
    bpe->ignore_merges_ = optional_bool(model, "ignore_merges", file);

    auto vocab = model.find("vocab");
    LOTA_CHECK(vocab != model.end() && vocab->is_object(), "%s: BPE model has no \"vocab\" object",
               file.c_str());
    bpe->vocab_.reserve(vocab->size());
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
        LOTA_CHECK(it.value().is_number_integer(), "%s: vocab entry '%s' is not an integer id", file.c_str(),
                   it.key().c_str());
        int64_t id = it.value().get<int64_t>();
        LOTA_CHECK(id >= 0 && id < (int64_t(1) << 30), "%s: vocab entry '%s' has id %lld out of range",
                   file.c_str(), it.key().c_str(), static_cast<long long>(id));
        bpe->vocab_[it.key()] = static_cast<int32_t>(id);
        bpe->vocab_r_[static_cast<int32_t>(id)] = it.key();
        bpe->max_id_ = std::max(bpe->max_id_, static_cast<int32_t>(id));
    }

    auto merges = model.find("merges");
    LOTA_CHECK(merges != model.end() && merges->is_array(), "%s: BPE model has no \"merges\" array",
               file.c_str());
    size_t prefix_len = bpe->prefix_ ? bpe->prefix_->size() : 0;
    bpe->merges_.reserve(merges->size());
    uint32_t rank = 0;
    for (const auto& m : *merges) {
        std::string a, b;
        if (m.is_string()) {
            const std::string& line = m.get_ref<const std::string&>();
            if (line.rfind("#version", 0) == 0) continue;
            size_t sp = line.find(' ');
            LOTA_CHECK(sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos,
                       "%s: merge %u ('%s') is not two tokens separated by one space", file.c_str(), rank + 1,
                       line.c_str());
            a = line.substr(0, sp);
            b = line.substr(sp + 1);
        } else {
            LOTA_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                       "%s: merge %u is neither \"a b\" nor [\"a\", \"b\"]", file.c_str(), rank + 1);
            a = m[0].get<std::string>();
            b = m[1].get<std::string>();
        }
        auto ia = bpe->vocab_.find(a), ib = bpe->vocab_.find(b);
        LOTA_CHECK(ia != bpe->vocab_.end(), "%s: merge %u uses '%s', which is not in the vocab", file.c_str(),
                   rank + 1, a.c_str());
        LOTA_CHECK(ib != bpe->vocab_.end(), "%s: merge %u uses '%s', which is not in the vocab", file.c_str(),
                   rank + 1, b.c_str());
        LOTA_CHECK(b.size() >= prefix_len, "%s: merge %u: '%s' is shorter than continuing_subword_prefix",
                   file.c_str(), rank + 1, b.c_str());
        std::string merged = a + b.substr(prefix_len);
        auto im = bpe->vocab_.find(merged);
        LOTA_CHECK(im != bpe->vocab_.end(), "%s: merge %u produces '%s', which is not in the vocab",
                   file.c_str(), rank + 1, merged.c_str());
        // Like HF (a hash map collected in order), a repeated pair keeps its last rank.
        bpe->merges_[pair_key(ia->second, ib->second)] = MergeInfo{rank, im->second};
        ++rank;
    }
    if (bpe->unk_token_) {
        LOTA_CHECK(bpe->vocab_.count(*bpe->unk_token_), "%s: unk_token '%s' is not in the vocab", file.c_str(),
                   bpe->unk_token_->c_str());
    }
    return bpe;
}

std::optional<int32_t> Bpe::token_to_id(const std::string& token) const {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
    auto it = vocab_r_.find(id);
    return it == vocab_r_.end() ? nullptr : &it->second;
}

const Bpe::MergeInfo* Bpe::find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
}

void Bpe::tokenize(const std::string& word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
        auto it = vocab_.find(word);
        if (it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    bool cacheable = word.size() < k_cache_max_word;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(word);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> ids;
    merge_word(word, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() >= k_cache_capacity) cache_.clear();
        cache_.emplace(word, std::move(ids));
    }
}

void Bpe::merge_word(const std::string& w, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&](int32_t id, size_t len) {
        int64_t n = static_cast<int64_t>(symbols.size());
        if (n > 0) symbols.back().next = n;
        symbols.push_back(Symbol{id, n - 1, -1, len});
    };
    // Pending unknown run (unk id, byte length); unk_len 0 means none.
    int32_t unk_id = unk_token_ ? vocab_.at(*unk_token_) : -1;
    size_t unk_len = 0;
    for (size_t i = 0; i < w.size();) {
        size_t start = i;
        utf8_next(w, i);
        size_t byte_len = i - start;
        std::string s = w.substr(start, byte_len);
        if (start > 0 && prefix_) s = *prefix_ + s;
        if (i >= w.size() && suffix_) s += *suffix_;
        auto it = vocab_.find(s);
        if (it != vocab_.end()) {
            if (unk_len) {
                add(unk_id, unk_len);
                unk_len = 0;
            }
            add(it->second, byte_len);
            continue;
        }
        if (byte_fallback_) {
            std::vector<int32_t> bytes;
            for (unsigned char b : s) {
                char code[8];
                std::snprintf(code, sizeof(code), "<0x%02X>", b);
                auto ib = vocab_.find(code);
                if (ib == vocab_.end()) break;
                bytes.push_back(ib->second);
            }
            if (bytes.size() == s.size()) {
                // As in HF, a pending unk run is not flushed before the byte tokens.
                for (int32_t id : bytes) add(id, 1);
                continue;
            }
        }
        if (unk_token_) {
            if (unk_len && fuse_unk_) {
                unk_len += byte_len;
            } else {
                if (unk_len) add(unk_id, unk_len);
                unk_len = byte_len;
            }
        }
    }
    if (unk_len) add(unk_id, unk_len);

    std::priority_queue<Candidate> queue;
    for (size_t p = 0; p + 1 < symbols.size(); ++p)
        if (const MergeInfo* m = find_merge(symbols[p].id, symbols[p + 1].id))
            queue.push(Candidate{m->rank, p, m->new_id});
    while (!queue.empty()) {
        Candidate top = queue.top();
        queue.pop();
        Symbol& cur = symbols[top.pos];
        if (cur.len == 0 || cur.next < 0) continue;
        size_t next_pos = static_cast<size_t>(cur.next);
        Symbol right = symbols[next_pos];
        const MergeInfo* target = find_merge(cur.id, right.id);
        if (!target || target->new_id != top.new_id) continue;
        cur.id = top.new_id;
        cur.len += right.len;
        cur.next = right.next;
        symbols[next_pos].len = 0;
        if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int64_t>(top.pos);
        if (cur.prev >= 0) {
            const Symbol& prev = symbols[static_cast<size_t>(cur.prev)];
            if (const MergeInfo* m = find_merge(prev.id, cur.id))
                queue.push(Candidate{m->rank, static_cast<size_t>(cur.prev), m->new_id});
        }
        if (cur.next >= 0) {
            const Symbol& nx = symbols[static_cast<size_t>(cur.next)];
            if (const MergeInfo* m = find_merge(cur.id, nx.id)) queue.push(Candidate{m->rank, top.pos, m->new_id});
        }
    }
    for (const Symbol& s : symbols)
        if (s.len != 0) out.push_back(s.id);
}

}  // namespace lota::text
