// The fine-tuning loop behind `lota train`: LoTA-QAF (ternary adapters on the quantized linears,
// t-SignSGD), the 16-bit LoRA baseline or the QA-LoRA baseline (both AdamW) on the same quantized base. Per optimizer step:
// batch_size examples in micro-batches, loss = Σ token CE over target tokens / total target tokens
// of the step, one backward per micro-batch, one optimizer step. The loop is the same for every
// method; what differs is chosen once (train/train_method.h, train/optimizer.h).
// Logs every step to OUT/train_log.jsonl and one "step ..." line on stderr; checkpoints every
// save_every steps (train/checkpoint.h); the final adapter is OUT/adapter_model.safetensors +
// adapter_config.json (io/adapter.h), plus OUT/loss_curve.svg.
// Gradient checkpointing per block (train/block_checkpoint.h) is on for every block by default;
// --recompute-blocks N keeps the activations of all but the first N blocks (faster, more memory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/examples.h"
#include "dist/dist.h"
#include "io/adapter.h"
#include "train/adamw.h"
#include "train/tsignsgd.h"

namespace lota::train {

struct TrainOptions {
    std::string model;            ///< quantized model directory (GPTQ checkpoint)
    std::string out;              ///< adapter output directory (must be new or empty unless resume)
    io::AdapterMethod method = io::AdapterMethod::LOTA;  ///< LoTA-QAF, or the LoRA or QA-LoRA baseline
    data::DataOptions data;
    int64_t steps = 0;            ///< optimizer steps; 0 = from epochs
    double epochs = 0;            ///< used when steps = 0 (default 1 epoch)
    int64_t batch_size = 64;      ///< examples per optimizer step
    int64_t micro_batch_size = 0; ///< examples per forward; 0 = batch_size
    int64_t rank = 64;            ///< r
    double omega = 0;             ///< LoTA ω; 0 = 0.75·r
    std::vector<std::string> target_modules;  ///< short names; empty = all seven projections
    int64_t save_every = 0;       ///< checkpoint every K steps (0: only at the end)
    int64_t recompute_blocks = -1;  ///< blocks recomputed in backward (the first ones); -1 = all, 0 = none
    /// GPU: keep the input embedding table (untied) and the recomputed blocks' inputs in host memory
    bool offload = false;
    int64_t loss_chunk_rows = 1024;  ///< token rows per LM-head chunk of the loss (train/lm_loss.h)
    bool resume = false;          ///< continue from OUT's latest checkpoint
    bool overwrite = false;       ///< delete a non-empty OUT (after the inputs load) and start over
    std::string device = "auto";  ///< auto (CUDA when usable, else CPU) | cpu | cuda
    std::string dtype = "auto";   ///< compute dtype: auto (bf16 on CUDA, f32 on the CPU) | f32 | bf16 | f16
    uint64_t seed = 0;
    std::string trace;            ///< write a Kineto trace of the second step (the first when only one runs) here
    int64_t max_steps_this_run = 0;  ///< stop (after checkpointing) when > 0 steps ran; for tests
    TSignSgdOptions tsign;        ///< LoTA optimizer
    AdamWOptions adamw;           ///< LoRA and QA-LoRA optimizer
    double lora_alpha = 0;        ///< 0 = 2·r (LoRA and QA-LoRA: scaling α/r)
    double lora_dropout = 0.05;   ///< LoRA only (QA-LoRA has none)
    std::string qalora_pooling = "mean";  ///< QA-LoRA: mean (official code) or sum (paper), quant/qalora.h
};

struct TrainResult {
    int64_t steps_done = 0;
    double first_loss = 0, last_loss = 0;
};

/// Runs training; throws lota::Error on bad input, on a non-finite loss (the last checkpoint is kept).
/// With `group` (dist/dist.h) of several ranks the run is data parallel: every rank runs the same
/// command; each step's micro-batches (cut from the global batch as one process cuts them) are
/// split across the ranks, the gradient sums all-reduced exactly (train/grad_reduce.h), and every
/// rank applies the same update, so the adapter equals one process's with the same flags and the
/// same --micro-batch-size. Rank 0 alone writes OUT. The caller ends the group (finish) after this.
TrainResult train_run(const TrainOptions& options, dist::Group* group = nullptr);

}  // namespace lota::train
