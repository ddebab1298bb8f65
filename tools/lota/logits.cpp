// lota logits: forward pass on token ids; writes logits [B, T, V] (float32) to a safetensors file
// as tensor "logits" (and "attention_mask" [B, T] for padded batches, right-padded).
#include <ATen/ATen.h>
#include <torch/types.h>

#include "args.h"
#include "commands.h"
#include "io/safetensors.h"
#include "io/token_ids.h"
#include "model/transformer.h"
#include "util/check.h"

namespace {

struct LogitsOptions {
    std::string model, ids, out, adapter, device = "cpu", dtype = "f32";
};

int run_logits(const LogitsOptions& o) {
    torch::NoGradGuard no_grad;
    auto seqs = lota::io::token_ids_read(o.ids);
    auto model = lota::cli::load_model(o.model, o.adapter, o.device, o.dtype);
    int64_t T = 0;
    for (const auto& s : seqs) T = std::max<int64_t>(T, (int64_t)s.size());
    const int64_t B = (int64_t)seqs.size();
    at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
    for (int64_t b = 0; b < B; ++b)
        for (size_t t = 0; t < seqs[b].size(); ++t) {
            LOTA_CHECK(seqs[b][t] < model->config().vocab_size, "%s: token id %lld >= vocab_size %lld",
                       o.ids.c_str(), (long long)seqs[b][t], (long long)model->config().vocab_size);
            ids[b][(int64_t)t] = seqs[b][t];
            mask[b][(int64_t)t] = 1;
        }
    at::Tensor logits = model->forward(ids, mask).to(at::kFloat).cpu();
    lota::io::safetensors_write(o.out, {{"logits", logits}, {"attention_mask", mask}});
    return 0;
}

LOTA_COMMAND("logits", "Forward pass on token ids; write logits to safetensors", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<LogitsOptions>();
    sub.add_option("--model", o->model, "HF model directory")->required();
    sub.add_option("--ids", o->ids, "JSON file: array of ids, or array of arrays (batch, right-padded)")->required();
    sub.add_option("--out", o->out, "output .safetensors")->required();
    lota::cli::add_adapter_flag(sub, o->adapter);
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    return [o] { return run_logits(*o); };
});

}  // namespace
