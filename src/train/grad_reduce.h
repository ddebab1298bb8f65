// The adapter gradient of one optimizer step, summed over its micro-batches and over the ranks of a
// data-parallel run (dist/dist.h), so that every rank applies the same update and N ranks train the
// same adapter as one process with the same global batch.
//
// Note [exact gradient sums]
// One process sums the micro-batch gradients g_0 … g_{M−1} of a step; N ranks each hold some of them.
// A float32 sum depends on the order of its terms, and no all-reduce sums in the order one process
// would (NCCL's ring does not even use one order for all elements). So the sum is taken in float64:
// every g_m is float32 (24-bit significands), and a float64 sum of M such terms is exact — hence
// independent of order and grouping — whenever, element by element, the terms' exponents span at
// most 53 − 24 − ⌈log2 M⌉ binary orders (e.g. a factor of 2^22 ≈ 4·10^6 for M = 128). The exact sum
// is rounded to float32 once, after the all-reduce. Then one process (M micro-batches summed locally)
// and N ranks (each summing its share, then the all-reduce) give the same float32 gradient bit for
// bit, and so the same t-SignSGD quantile, the same AdamW step and the same adapter. When an
// element's terms span more than that, the float64 sums may differ by rounding: each is within
// (M − 1)·2^−53·Σ|g_m| of the exact sum, and after rounding to float32 the two results are equal or
// one float32 ulp apart (plus that bound when the sum nearly cancels). Each g_m itself must be the
// same bits on every rank: the same micro-batch composition (the step's micro-batches are cut from
// the global batch the same way whatever the number of ranks), the same kernels (same device type,
// same CPU thread count) and the same adapter (every rank applies the same update).
// One process with one micro-batch a step needs none of this: the reducer then does nothing.
//
// Buckets: the float64 sums live in flat buffers of about 32 MiB, filled in the order the backward
// finishes the gradients (the last block's first). With a hook (LoTA-QAF: the layer's backward calls
// it once it has added its micro-batch gradient) a bucket's all-reduce starts during the backward of
// the rank's last micro-batch, as soon as the bucket and every bucket before it are complete, so
// communication overlaps the rest of the backward. Without hooks (LoRA: autograd accumulates .grad)
// the sums are folded in after each micro-batch and all-reduced after the backward, not overlapped.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dist/dist.h"

namespace lota::train {

class GradReducer {
  public:
    /// One gradient: either a float32 buffer the backward adds into (LoTA-QAF's grad_a/grad_b) or an
    /// autograd leaf whose .grad() it is (LoRA).
    struct Entry {
        at::Tensor buffer;
        at::Tensor leaf;
    };
    /// `entries` in the order the backward finishes them. `needed` false (one process, one
    /// micro-batch a step): every call below returns at once and the gradients stay as computed.
    GradReducer(std::vector<Entry> entries, dist::Group& group, bool needed, int64_t bucket_bytes = 32 << 20);
    bool needed() const { return needed_; }

    /// A step in which this rank runs `micro_batches` micro-batches (0 is allowed: it adds zeros).
    void step_begin(int64_t micro_batches);
    /// From the backward: entries `i` and `j` hold this micro-batch's gradient now (buffers only).
    void ready(size_t i, size_t j);
    /// After each micro-batch's backward: folds the entries no hook reported into the sums.
    void micro_batch_end();
    /// All-reduces what is not yet in flight, waits, and writes the sums (rounded once to float32)
    /// into the buffers / leaves' .grad().
    void step_end();

    /// Buckets, and their float64 bytes in all (0 when not needed).
    size_t n_buckets() const { return buckets_.size(); }
    int64_t bucket_bytes_total() const;
    /// Buckets whose all-reduce has started in the current step (always a prefix, in bucket order).
    size_t n_launched() const { return next_launch_; }
    /// Buckets whose all-reduce a hook started (ready(): inside the backward) in the current or last step.
    size_t n_launched_in_backward() const { return launched_in_backward_; }

  private:
    struct Bucket {
        at::Tensor flat;           ///< float64 sums of entries [first, last)
        size_t first = 0, last = 0;
        size_t n_ready = 0;
        dist::Pending pending;
        bool launched = false;
    };
    void fold(size_t i);
    void launch_ready_prefix();

    std::vector<Entry> entries_;
    std::vector<at::Tensor> sums_;  ///< float64 views into the buckets, one per entry
    std::vector<size_t> bucket_of_;
    std::vector<bool> folded_;      ///< entry's gradient of the current micro-batch is in its sum
    std::vector<Bucket> buckets_;
    dist::Group& group_;
    bool needed_;
    int64_t micro_left_ = 0;        ///< this rank's micro-batches not yet finished in this step
    size_t next_launch_ = 0;
    size_t launched_in_backward_ = 0;
    bool in_hook_ = false;          ///< inside ready()
};

}  // namespace lota::train
