// Per-block gradient checkpointing (block_checkpoint.h).
#include "train/block_checkpoint.h"

#include <algorithm>
#include <mutex>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace lota::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// What one checkpointed block needs in backward; lives until the backward of that block.
struct BlockArgs : public torch::CustomClassHolder {
    model::Transformer* model = nullptr;
    int64_t layer = 0;
    std::shared_ptr<const model::ForwardContext> ctx;
    std::optional<at::Generator> gen;
    at::Tensor gen_state;  ///< generator state before the block's forward
    bool offload = false;
    at::Tensor host_input;  ///< with offload: the block's input in pinned host memory, until backward
};

// Generator state is read and written under the generator's mutex (ATen's rule for its
// generators); the lock is not held while the block runs, because drawing takes it too.
at::Tensor generator_state_get(at::Generator& gen) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
}

void generator_state_set(at::Generator& gen, const at::Tensor& state) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
}

struct BlockCheckpointFunction : public torch::autograd::Function<BlockCheckpointFunction> {
    static at::Tensor forward(AutogradContext* actx, const at::Tensor& h, const at::Tensor& anchor,
                              const c10::intrusive_ptr<BlockArgs>& args) {
        if (args->gen) args->gen_state = generator_state_get(*args->gen);
        at::Tensor out;
        {
            at::NoGradGuard no_grad;
            out = args->model->block_forward(args->layer, h, *args->ctx);
        }
        if (args->offload && h.is_cuda()) {
            // Copied in stream order: the allocator may hand h's memory to later work on this stream only
            // after the copy; the pinned block itself is not reused before its copy is done (ATen's host
            // allocator records an event for it).
            args->host_input = at::empty(h.sizes(), h.options().device(at::kCPU).pinned_memory(true));
            args->host_input.copy_(h, /*non_blocking=*/true);
        } else {
            actx->save_for_backward({h});
        }
        actx->saved_data["args"] = c10::IValue::make_capsule(args);
        return out;
    }

    static variable_list backward(AutogradContext* actx, variable_list grad_out) {
        const auto args = c10::static_intrusive_pointer_cast<BlockArgs>(actx->saved_data["args"].toCapsule());
        at::Tensor h;
        if (args->host_input.defined()) {
            h = args->host_input.to(args->model->device(), /*non_blocking=*/true);
            args->host_input = at::Tensor();  // the pinned block returns to the allocator after the copy
        } else {
            h = actx->get_saved_variables()[0];
        }
        h = h.detach().requires_grad_(true);
        at::Tensor after;
        if (args->gen) {
            after = generator_state_get(*args->gen);
            generator_state_set(*args->gen, args->gen_state);
        }
        {
            at::AutoGradMode grad(true);
            const at::Tensor out = args->model->block_forward(args->layer, h, *args->ctx);
            torch::autograd::backward({out}, {grad_out[0]});
        }
        if (args->gen) generator_state_set(*args->gen, after);
        return {h.grad(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor block_forward_checkpointed(model::Transformer& model, int64_t layer, const at::Tensor& h,
                                      std::shared_ptr<const model::ForwardContext> ctx,
                                      std::optional<at::Generator> dropout_gen, bool offload) {
    auto args = c10::make_intrusive<BlockArgs>();
    args->offload = offload;
    args->model = &model;
    args->layer = layer;
    args->ctx = std::move(ctx);
    args->gen = std::move(dropout_gen);
    // A leaf that requires grad, so autograd runs this block's backward even when h needs none.
    const at::Tensor anchor = at::zeros({}, at::kFloat).requires_grad_(true);
    return BlockCheckpointFunction::apply(h, anchor, args);
}

at::Tensor forward_hidden_checkpointed(model::Transformer& model, const at::Tensor& ids, const at::Tensor& mask,
                                       std::optional<at::Generator> dropout_gen, int64_t recompute_blocks,
                                       bool offload) {
    const int64_t L = (int64_t)model.blocks().size();
    const int64_t n = recompute_blocks < 0 ? L : std::min(recompute_blocks, L);
    // Every block's saved args share the context, so it lives exactly as long as the graph.
    const auto ctx = std::make_shared<const model::ForwardContext>(model.prepare_packed(ids, mask));
    at::Tensor h = model::Transformer::pack(model.embed(ids), *ctx);
    for (int64_t l = 0; l < L; ++l)
        h = l < n ? block_forward_checkpointed(model, l, h, ctx, dropout_gen, offload)
                  : model.block_forward(l, h, *ctx);
    return h;
}

}  // namespace lota::train
