// lota merge: exact merge of a LoTA-QAF or QA-LoRA adapter into its quantized model; see src/merge/merge.h.
// --verify runs the adapter model and the merged model on --device in --dtype.
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "merge/merge.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct MergeCli {
    lota::merge::MergeOptions o;
    bool json = false;
};

int run_merge(MergeCli& c) {
    lota::output_path_check(c.o.out, {{"--model", c.o.model}, {"--adapter", c.o.adapter}});
    lota::output_dir_check(c.o.out, c.o.overwrite);
    lota::cli::runtime_resolve(c.o.device, c.o.dtype);
    const auto r = lota::merge::merge_run(c.o);
    const std::string verify = c.o.verify ? (r.verified ? "bit-identical" : "failed") : "not run";
    nlohmann::json j = {{"model", c.o.model}, {"adapter", c.o.adapter}, {"out", c.o.out},
                        {"merged_modules", r.merged_modules}, {"markers", r.markers}, {"verify", verify}};
    if (c.o.verify)
        j.update({{"verified_values", r.verified_values}, {"device", r.device}, {"dtype", r.dtype}});
    lota::cli::result_print(c.json, j,
                            lota::strfmt("merged %lld modules into %s; %lld codes moved; verify: %s%s",
                                         (long long)r.merged_modules, c.o.out.c_str(), (long long)r.markers,
                                         verify.c_str(),
                                         r.verified ? (" (" + r.device + ", " + r.dtype + ")").c_str() : ""));
    return 0;
}

LOTA_COMMAND("merge", "Merge a LoTA-QAF or QA-LoRA adapter into its quantized model (exact)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto c = std::make_shared<MergeCli>();
    auto& o = c->o;
    lota::cli::add_model_flag(sub, o.model, "quantized, as lota quantize writes it");
    lota::cli::add_adapter_flag(sub, o.adapter, "the LoTA-QAF or QA-LoRA adapter to merge (lota train output)")->required();
    lota::cli::add_out_flag(sub, o.out, "merged model directory (written atomically)")->required();
    lota::cli::add_overwrite_flag(sub, o.overwrite, "--out directory");
    sub.add_flag("--verify", o.verify, "require bit-identical logits of adapter and merged model on sample inputs");
    sub.add_option("--verify-len", o.verify_len, "tokens per sample sequence")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    lota::cli::add_seed_flag(sub, o.seed, "the sample inputs of --verify");
    lota::cli::add_device_flag(sub, o.device);
    lota::cli::add_dtype_flag(sub, o.dtype);
    lota::cli::add_json_flag(sub, c->json);
    return [c] { return run_merge(*c); };
});

}  // namespace
