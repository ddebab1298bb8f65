// Gradient checkpointing per transformer block: the block runs without keeping its activations
// and is recomputed in backward (Chen et al. 2016, "Training deep nets with sublinear memory
// cost"). LoTA's merged weights are reused by the recomputation (they depend only on the adapter,
// which is constant within a step); LoRA dropout masks are reproduced by restoring the dropout
// generator's state (CPU: the Mersenne Twister state; CUDA: the Philox seed and offset) before the
// recomputation, so results equal the uncheckpointed path. Optionally (offload) a block's input waits
// for its backward in pinned host memory instead of on the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "model/transformer.h"

namespace lota::train {

/// Block `layer` of `model` on h [B, T, C] with `ctx`; activations recomputed in backward.
/// `dropout_gen` is the generator the block's LoRA layers draw from (or nullopt). `model` must
/// outlive the backward pass; the context is kept alive by the graph. `offload`: a CUDA h is kept in
/// pinned host memory until the backward copies it back (same results; two copies of h per step).
at::Tensor block_forward_checkpointed(model::Transformer& model, int64_t layer, const at::Tensor& h,
                                      std::shared_ptr<const model::ForwardContext> ctx,
                                      std::optional<at::Generator> dropout_gen, bool offload = false);

/// Forward through every block, the first `recompute_blocks` of them checkpointed (−1 or more than the
/// model has: all; 0: none), the rest keeping their activations for backward: the hidden states before
/// the final norm (ids [B, T] int64 and mask [B, T] on any device; on the CPU they save a
/// readback). They are [B, T, C], or, when a CPU mask has padding, [N, C]: the real tokens' rows in
/// row-major order (Transformer::prepare_packed: the body skips the padding). Keeping a block's
/// activations saves its recomputation (about a quarter of its GEMM work in a step) at the cost of its
/// activation memory. `offload` as in block_forward_checkpointed, for every checkpointed block.
at::Tensor forward_hidden_checkpointed(model::Transformer& model, const at::Tensor& ids, const at::Tensor& mask,
                                       std::optional<at::Generator> dropout_gen, int64_t recompute_blocks = -1,
                                       bool offload = false);

}  // namespace lota::train
