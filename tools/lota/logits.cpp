// lota logits: forward pass on token ids; writes logits [B, T, V] (float32) to a safetensors file
// as tensor "logits" (and "attention_mask" [B, T] for padded batches, right-padded). Reports the
// output path and shape (--json: one JSON object).
#include <ATen/ATen.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "io/safetensors.h"
#include "io/token_ids.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct LogitsOptions {
    std::string model, ids, out, adapter, device, dtype;
    bool json = false, overwrite = false;
};

int run_logits(LogitsOptions& o) {
    torch::NoGradGuard no_grad;
    lota::output_path_check(o.out, {{"--model", o.model}, {"--ids", o.ids}, {"--adapter", o.adapter}});
    lota::output_file_check(o.out, o.overwrite);
    lota::cli::runtime_resolve(o.device, o.dtype);
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
    const nlohmann::json j = {{"model", o.model},   {"adapter", o.adapter},
                              {"out", o.out},       {"shape", logits.sizes().vec()},
                              {"device", o.device}, {"dtype", o.dtype}};
    lota::cli::result_print(o.json, j,
                            lota::strfmt("logits [%lld, %lld, %lld] -> %s", (long long)logits.size(0),
                                         (long long)logits.size(1), (long long)logits.size(2), o.out.c_str()));
    return 0;
}

LOTA_COMMAND("logits", "Forward pass on token ids; write logits to safetensors", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<LogitsOptions>();
    lota::cli::add_model_flag(sub, o->model, "dense, GPTQ or merged LoTA");
    sub.add_option("--ids", o->ids, "JSON file: array of ids, or array of arrays (batch, right-padded)")->required();
    lota::cli::add_out_flag(sub, o->out, ".safetensors file with logits [B, T, V] float32")->required();
    lota::cli::add_overwrite_flag(sub, o->overwrite, "--out file");
    lota::cli::add_adapter_flag(sub, o->adapter, "applied unmerged");
    lota::cli::add_device_flag(sub, o->device);
    lota::cli::add_dtype_flag(sub, o->dtype);
    lota::cli::add_json_flag(sub, o->json);
    return [o] { return run_logits(*o); };
});

}  // namespace
