// DecodeGraph (see decode_graph.h).
#include "model/decode_graph.h"

#include <cstdio>

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace lota::model {

struct DecodeGraph::Impl {
    enum class State { Eager, WarmUp, Capture, Replay };
    Transformer& model;
    KVCache& cache;
    State state;
    at::Tensor ids, mask, logits;  // static buffers the graph reads and writes
#ifdef LOTA_WITH_CUDA
    std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif

    Impl(Transformer& m, KVCache& c, bool use_graph)
        : model(m), cache(c), state(use_graph && m.device().is_cuda() ? State::WarmUp : State::Eager) {}

    at::Tensor eager(const at::Tensor& i, const at::Tensor& m) { return model.decode_step(i, m, cache); }

#ifdef LOTA_WITH_CUDA
    // Captures decode_step on a side stream (graphs cannot be captured on the default stream),
    // then replays it once to do this step's work. On failure ends the broken capture, keeps
    // nothing of it and returns false; the cache is untouched (captured work does not run).
    bool capture() {
        c10::cuda::device_synchronize();
        const at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, model.device().index());
        auto g = std::make_unique<at::cuda::CUDAGraph>();
        try {
            {
                const at::cuda::CUDAStreamGuard guard(side);
                g->capture_begin();
                logits = eager(ids, mask);
                g->capture_end();
            }
            g->replay();
            graph = std::move(g);
            return true;
        } catch (const std::exception& e) {
            cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
            if (cudaStreamIsCapturing(side.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
                cudaGraph_t broken = nullptr;
                cudaStreamEndCapture(side.stream(), &broken);
                if (broken) cudaGraphDestroy(broken);
            }
            (void)cudaGetLastError();
            (void)g.release();  // its pool registration is half done; leaking it is the safe choice
            std::fprintf(stderr, "lota: decode steps run without a CUDA graph (capture failed: %.200s)\n", e.what());
            return false;
        }
    }
#endif
};

DecodeGraph::DecodeGraph(Transformer& model, KVCache& cache, bool use_graph)
    : impl_(std::make_unique<Impl>(model, cache, use_graph)) {}

DecodeGraph::~DecodeGraph() = default;

bool DecodeGraph::replaying() const { return impl_->state == Impl::State::Replay; }

at::Tensor DecodeGraph::step(const at::Tensor& ids, const at::Tensor& mask) {
    Impl& s = *impl_;
    LOTA_CHECK(s.cache.length < s.cache.capacity(), "KV cache holds %lld positions, %lld needed",
               (long long)s.cache.capacity(), (long long)s.cache.length + 1);
    const at::Device dev = s.model.device();
    at::Tensor out;
    if (s.state == Impl::State::Eager) {
        out = s.eager(ids.to(dev), mask.to(dev).to(at::kLong));
    } else {
        if (!s.ids.defined()) {
            s.ids = ids.to(dev).clone();
            s.mask = mask.to(dev).to(at::kLong).clone();
        } else {
            s.ids.copy_(ids);
            s.mask.copy_(mask);
        }
        switch (s.state) {
            case Impl::State::WarmUp:
                out = s.eager(s.ids, s.mask);
                s.state = Impl::State::Capture;
                break;
            case Impl::State::Capture:
#ifdef LOTA_WITH_CUDA
                if (s.capture()) {
                    s.state = Impl::State::Replay;
                    out = s.logits;
                    break;
                }
#endif
                s.state = Impl::State::Eager;
                out = s.eager(s.ids, s.mask);
                break;
            case Impl::State::Replay:
#ifdef LOTA_WITH_CUDA
                s.graph->replay();
#endif
                out = s.logits;
                break;
            case Impl::State::Eager: break;
        }
    }
    s.cache.length += 1;
    return out;
}

}  // namespace lota::model
