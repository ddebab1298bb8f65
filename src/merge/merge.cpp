// Exact LoTA-QAF / QA-LoRA merge into a GPTQ checkpoint (merge.h).
#include "merge/merge.h"

#include <ATen/ATen.h>

#include "io/adapter.h"
#include "io/gptq_checkpoint.h"
#include "io/model_files.h"
#include "merge/verify.h"
#include "model/device.h"
#include "quant/gptq_tensors.h"
#include "quant/lota_merge.h"
#include "quant/qalora.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"

namespace lota::merge {

MergeResult merge_run(const MergeOptions& o) {
    at::NoGradGuard no_grad;
    MergeResult res;
    if (o.verify) {  // resolved first, so an unusable device fails before any work
        res.device = model::device_resolve(o.device);
        res.dtype = model::dtype_resolve(o.dtype, res.device);
    }
    StagedDir staged(o.out, o.overwrite);  // checks the output directory first; a failed verify leaves nothing behind
    io::GptqCheckpoint ckpt = io::gptq_checkpoint_read(o.model);
    LOTA_CHECK(!ckpt.quant.lota_offset, "%s: this model already carries LoTA offsets (it is a merged model); merge "
               "into the original quantized model", o.model.c_str());
    const io::Adapter adapter = io::adapter_read(o.adapter);
    const io::AdapterMethod method = adapter.config.method;
    LOTA_CHECK(method != io::AdapterMethod::LORA,
               "%s: a 16-bit LoRA adapter cannot be merged into the quantized grid exactly; evaluate it unmerged "
               "(`lota logits --adapter`)", o.adapter.c_str());
    // QA-LoRA's F is a float64 product rounded to float32: computed where verify runs the adapter model, so
    // the two agree bit for bit (quant/qalora.h).
    const at::Device offset_device = o.verify ? at::Device(res.device) : at::Device(at::kCPU);
    const quant::QaLoraPooling pooling = method == io::AdapterMethod::QALORA
        ? quant::qalora_pooling_parse(adapter.config.qalora_pooling, o.adapter + ": qalora.pooling")
        : quant::QaLoraPooling::MEAN;
    const double scaling = adapter.config.lora_alpha / (double)adapter.config.r;

    std::map<std::string, quant::QuantizedWeight> weights;
    std::vector<io::AdapterTarget> targets;
    for (const auto& [name, t] : ckpt.linears) {
        weights[name] = quant::quantized_weight_from_gptq(t, ckpt.quant, name);
        targets.push_back({name, weights[name].in_features, weights[name].out_features});
    }
    io::adapter_check(adapter, targets, ckpt.quant.bits, ckpt.quant.group_size, o.adapter);

    for (auto& [name, qw] : weights) {
        quant::QuantizedWeight merged;
        auto it = adapter.modules.find(name);
        if (it != adapter.modules.end() && method == io::AdapterMethod::QALORA) {
            merged = quant::qalora_merge(qw, it->second.lora_a.to(offset_device, at::kFloat),
                                         it->second.lora_b.to(offset_device, at::kFloat), scaling, pooling);
            ++res.merged_modules;
        } else if (it != adapter.modules.end()) {
            merged = quant::lota_merge(qw, it->second.lora_a, it->second.lora_b, adapter.config.omega);
            res.markers += quant::unpack_codes(merged).ne(quant::unpack_codes(qw)).sum().item<int64_t>();
            ++res.merged_modules;
        } else {
            merged = qw;  // F = 0: S·(Q − Z + 0) is S·(Q − Z) bit for bit
            merged.offset = at::zeros({qw.n_groups(), qw.out_features}, at::kFloat);
        }
        ckpt.linears[name] = quant::gptq_tensors_from_quantized_weight(merged, ckpt.quant.checkpoint_format);
    }
    ckpt.quant.lota_offset = true;
    ckpt.quant.qzeros_3bit = io::Qzeros3Bit::PER_FIELD;  // how gptq_tensors_from_quantized_weight packs them
    ckpt.quant.extra["lota_offset_note"] =
        "every quantized linear has <prefix>.lota_offset float32 [G, N], the per-group offset factor F "
        "(LoTA-QAF, or a merged QA-LoRA adapter): W = S * (Q - Z + F). Readers that ignore it load the model "
        "without the offsets.";
    if (method == io::AdapterMethod::QALORA)
        ckpt.quant.extra["lota_adapter"] = {{"method", "qa-lora"},
                                            {"r", adapter.config.r},
                                            {"lora_alpha", adapter.config.lora_alpha},
                                            {"pooling", adapter.config.qalora_pooling}};
    else
        ckpt.quant.extra["lota_adapter"] = {{"r", adapter.config.r}, {"omega", adapter.config.omega}};

    io::gptq_checkpoint_write(staged.path(), ckpt);
    io::model_text_files_copy(o.model, staged.path());
    LOTA_LOG_INFO("merged %lld %s modules (%lld codes moved by one grid step)", (long long)res.merged_modules,
                  io::adapter_method_name(method), (long long)res.markers);
    if (o.verify) {
        const int64_t vocab = json_int_or(ckpt.config, "vocab_size", 0, o.model + "/config.json: \"vocab_size\"");
        LOTA_CHECK(vocab > 0, "%s/config.json: no vocab_size", o.model.c_str());
        const auto [ids, mask] = verify_inputs(o.verify_batch, o.verify_len, vocab, o.seed);
        const at::Tensor with_adapter = logits_compute(o.model, o.adapter, ids, mask, {res.device, res.dtype});
        const at::Tensor merged = logits_compute(staged.path(), "", ids, mask, {res.device, res.dtype});
        logits_require_equal(with_adapter, merged, "merge --verify (adapter model vs merged model)");
        res.verified = true;
        res.verified_values = merged.numel();
        LOTA_LOG_INFO("verify: logits of the adapter model and the merged model are bit-identical (%lld values, "
                      "%s, %s)", (long long)merged.numel(), res.device.c_str(), res.dtype.c_str());
    }
    staged.commit();
    return res;
}

}  // namespace lota::merge
