// Exact, bucketed gradient sums over micro-batches and ranks (grad_reduce.h, Note [exact gradient sums]).
#include "train/grad_reduce.h"

#include <ATen/ATen.h>

#include "util/check.h"
#include "util/strfmt.h"

namespace lota::train {

GradReducer::GradReducer(std::vector<Entry> entries, dist::Group& group, bool needed, int64_t bucket_bytes)
    : entries_(std::move(entries)), group_(group), needed_(needed) {
    if (!needed_) return;
    const size_t n = entries_.size();
    bucket_of_.resize(n);
    folded_.assign(n, false);
    // Group consecutive entries into buckets of about bucket_bytes of float64 sums.
    size_t first = 0;
    int64_t elems = 0;
    auto close = [&](size_t last) {
        if (last == first) return;
        const at::Tensor& proto = entries_[first].buffer.defined() ? entries_[first].buffer : entries_[first].leaf;
        Bucket b;
        b.flat = at::zeros({elems}, proto.options().dtype(at::kDouble));
        b.first = first;
        b.last = last;
        int64_t off = 0;
        for (size_t i = first; i < last; ++i) {
            const at::Tensor& t = entries_[i].buffer.defined() ? entries_[i].buffer : entries_[i].leaf;
            LOTA_ASSERT(t.device() == proto.device(), "gradient %zu is on another device than its bucket", i);
            sums_.push_back(b.flat.narrow(0, off, t.numel()).view(t.sizes()));
            bucket_of_[i] = buckets_.size();
            off += t.numel();
        }
        buckets_.push_back(std::move(b));
        first = last;
        elems = 0;
    };
    for (size_t i = 0; i < n; ++i) {
        const Entry& e = entries_[i];
        LOTA_ASSERT(e.buffer.defined() != e.leaf.defined(), "gradient entry %zu: exactly one of buffer and leaf", i);
        LOTA_ASSERT(!e.buffer.defined() || e.buffer.scalar_type() == at::kFloat, "gradient buffer %zu is not float32",
                    i);
        if (i > first && (elems + (e.buffer.defined() ? e.buffer : e.leaf).numel()) * 8 > bucket_bytes) close(i);
        elems += (e.buffer.defined() ? e.buffer : e.leaf).numel();
    }
    close(n);
}

void GradReducer::step_begin(int64_t micro_batches) {
    if (!needed_) return;
    micro_left_ = micro_batches;
    next_launch_ = 0;
    launched_in_backward_ = 0;
    for (Bucket& b : buckets_) {
        b.n_ready = 0;
        b.launched = false;
    }
    std::fill(folded_.begin(), folded_.end(), false);
}

void GradReducer::fold(size_t i) {
    // A layer that runs twice in one micro-batch reports twice: each report folds what arrived since.
    const bool first = !folded_[i];
    folded_[i] = true;
    LOTA_ASSERT(!buckets_[bucket_of_[i]].launched, "gradient %zu arrived after its bucket's all-reduce started", i);
    const Entry& e = entries_[i];
    if (e.buffer.defined()) {
        sums_[i].add_(e.buffer);  // float32 terms, float64 sum: exact (the Note)
        e.buffer.zero_();
    } else if (e.leaf.grad().defined()) {
        sums_[i].add_(e.leaf.grad());
        e.leaf.mutable_grad() = at::Tensor();
    }
    if (first && micro_left_ == 1) {  // this rank's last micro-batch: the sum is complete here
        ++buckets_[bucket_of_[i]].n_ready;
        launch_ready_prefix();
    }
}

void GradReducer::launch_ready_prefix() {
    while (next_launch_ < buckets_.size()) {
        Bucket& b = buckets_[next_launch_];
        if (b.n_ready < b.last - b.first) break;
        b.pending = group_.all_reduce_sum_async(b.flat, strfmt("the gradient all-reduce (bucket %zu of %zu)",
                                                               next_launch_ + 1, buckets_.size()));
        b.launched = true;
        ++next_launch_;
        launched_in_backward_ += in_hook_;
    }
}

void GradReducer::ready(size_t i, size_t j) {
    if (!needed_) return;
    LOTA_ASSERT(micro_left_ > 0, "a gradient arrived outside a micro-batch");
    in_hook_ = true;
    fold(i);
    fold(j);
    in_hook_ = false;
}

void GradReducer::micro_batch_end() {
    if (!needed_) return;
    LOTA_ASSERT(micro_left_ > 0, "micro_batch_end without a micro-batch");
    for (size_t i = 0; i < entries_.size(); ++i)
        if (!folded_[i]) fold(i);
    std::fill(folded_.begin(), folded_.end(), false);
    --micro_left_;
}

void GradReducer::step_end() {
    if (!needed_) return;
    LOTA_ASSERT(micro_left_ == 0, "step_end with %lld micro-batches left", (long long)micro_left_);
    for (size_t b = next_launch_; b < buckets_.size(); ++b) buckets_[b].n_ready = buckets_[b].last - buckets_[b].first;
    launch_ready_prefix();  // a rank with no micro-batch launches every bucket here, in the same order
    for (Bucket& b : buckets_) b.pending.wait();
    for (size_t i = 0; i < entries_.size(); ++i) {
        const Entry& e = entries_[i];
        if (e.buffer.defined())
            e.buffer.copy_(sums_[i]);  // the one rounding to float32
        else
            e.leaf.mutable_grad() = sums_[i].to(at::kFloat);
    }
    for (Bucket& b : buckets_) b.flat.zero_();
}

int64_t GradReducer::bucket_bytes_total() const {
    int64_t bytes = 0;
    for (const Bucket& b : buckets_) bytes += b.flat.numel() * (int64_t)sizeof(double);
    return bytes;
}

}  // namespace lota::train
