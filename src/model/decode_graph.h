// Decode steps replayed as a CUDA graph. A decode step of a B-row batch launches some twenty small
// kernels per layer; issued one by one through the dispatcher, the host time of those launches,
// not the GPU, bounds decode speed (bench/decode.md). Transformer::decode_step has fixed shapes
// and never reads back to the host, so its kernels can be captured once and replayed each step
// with a single launch. The first step runs eagerly (lazily built state, cuBLAS handles), the
// second is captured and replayed, every later one replayed. Off CUDA, when disabled, or when
// capture fails (a layer that syncs with the host), every step runs eagerly: same results.
#pragma once

#include <memory>

#include <ATen/core/Tensor.h>

#include "model/transformer.h"

namespace lota::model {

class DecodeGraph {
  public:
    /// `model` and `cache` must outlive this object; the cache's batch size is fixed.
    DecodeGraph(Transformer& model, KVCache& cache, bool use_graph = true);
    ~DecodeGraph();
    DecodeGraph(const DecodeGraph&) = delete;
    DecodeGraph& operator=(const DecodeGraph&) = delete;

    /// Logits [B, 1, V] for the next tokens ids [B, 1] with mask [B, 1] (int64, any device);
    /// appends them to the cache (cache.length grows by one). The returned tensor is
    /// overwritten by the next step.
    at::Tensor step(const at::Tensor& ids, const at::Tensor& mask);
    /// True once a graph has been captured and is being replayed.
    bool replaying() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lota::model
