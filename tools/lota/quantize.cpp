// lota quantize: GPTQ or RTN quantization of an HF model directory into a GPTQ checkpoint
// (calibrate/gptq_driver.h). Defaults come from QuantizeModelOptions / QuantOptions.
#include <nlohmann/json.hpp>

#include "args.h"
#include "calibrate/gptq_driver.h"
#include "commands.h"
#include "model/device.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct QuantizeArgs {
    std::string model, out;
    lota::calibrate::QuantizeModelOptions opts;
    bool json = false;
};

int run_quantize(QuantizeArgs& a) {
    auto& o = a.opts;
    LOTA_CHECK(o.quant.group_size == -1 || o.quant.group_size >= 1,
               "--group-size must be -1 (per channel) or a positive size, got %d", o.quant.group_size);
    lota::output_path_check(a.out, {{"--model", a.model}, {"--calib", o.calib_path}});
    lota::output_dir_check(a.out, o.overwrite);
    o.device = lota::model::device_resolve(o.device);  // calibration computes in f32: no --dtype
    return lota::cli::run_ranks(o.device, "quantize", [&](lota::dist::Group& group) {
        const auto rep = lota::calibrate::quantize_model(a.model, a.out, o, &group);
        nlohmann::json j = {{"model", a.model}, {"out", a.out}, {"method", o.method}, {"bits", o.quant.bits},
                            {"group_size", o.quant.group_size}, {"sym", o.quant.sym}, {"act_order", o.quant.act_order},
                            {"linears", rep.n_linears}, {"seconds", rep.seconds},
                            {"peak_memory_mib", rep.peak_memory_mib}, {"device", o.device}};
        if (!group.single_process()) j["ranks"] = group.size();
        // The GPTQ driver measures each layer's relative output error; RTN has no calibration data.
        std::string err;
        if (o.method == "gptq") {
            j["mean_rel_output_error"] = rep.mean_rel_error;
            err = lota::strfmt("; mean rel output err %.4g", rep.mean_rel_error);
        }
        if (group.root())
            lota::cli::result_print(
                a.json, j,
                lota::strfmt("quantized %lld linears (%s, %d bits, group %d) in %.1fs%s; peak %s memory %.0f MiB -> %s",
                             (long long)rep.n_linears, o.method.c_str(), o.quant.bits, o.quant.group_size,
                             rep.seconds, err.c_str(), o.device == "cuda" ? "GPU" : "resident", rep.peak_memory_mib,
                             a.out.c_str()));
        return 0;
    });
}

lota::cli::CommandRun setup_quantize(CLI::App& sub) {
    auto a = std::make_shared<QuantizeArgs>();
    auto& o = a->opts;
    lota::cli::add_model_flag(sub, a->model, "16/32-bit weights");
    lota::cli::add_out_flag(sub, a->out, "GPTQ checkpoint directory (written atomically)")->required();
    lota::cli::add_overwrite_flag(sub, o.overwrite, "--out directory");
    sub.add_option("--method", o.method, "gptq or rtn")->check(CLI::IsMember({"gptq", "rtn"}))->capture_default_str();
    sub.add_option("--bits", o.quant.bits, "2, 3, 4 or 8")->check(CLI::IsMember({2, 3, 4, 8}))->capture_default_str();
    sub.add_option("--group-size", o.quant.group_size, "32, 64, 128, ... or -1 (per channel)")->capture_default_str();
    sub.add_flag("--sym", o.quant.sym, "symmetric grid (default asymmetric)");
    sub.add_flag("--act-order", o.quant.act_order, "GPTQ act-order (desc_act)");
    sub.add_option("--calib", o.calib_path, "calibration text: .txt or .jsonl with {\"text\": ...}");
    sub.add_option("--calib-samples", o.calib_samples, "random calibration windows")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--calib-seqlen", o.calib_seqlen, "tokens per window")
        ->check(lota::cli::int_range(2))
        ->capture_default_str();
    sub.add_option("--damp", o.quant.damp, "GPTQ dampening (fraction of mean diag H)")
        ->check(lota::cli::real_range(0, false, 1, true))
        ->capture_default_str();
    lota::cli::add_seed_flag(sub, o.seed, "calibration windows");
    lota::cli::add_device_flag(sub, o.device);
    lota::cli::add_json_flag(sub, a->json);
    return [a] { return run_quantize(*a); };
}

LOTA_COMMAND("quantize", "Quantize a model with GPTQ or RTN (GPTQ checkpoint output)", setup_quantize);

}  // namespace
