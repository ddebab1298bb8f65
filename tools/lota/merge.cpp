// lota merge: exact merge of a LoTA-QAF adapter into its quantized model; see src/merge/merge.h.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "merge/merge.h"

namespace {

int run_merge(const lota::merge::MergeOptions& o) {
    const auto r = lota::merge::merge_run(o);
    std::printf("merged %lld modules into %s; %lld codes moved; verify: %s\n", (long long)r.merged_modules,
                o.out.c_str(), (long long)r.markers, o.verify ? (r.verified ? "bit-identical" : "failed") : "not run");
    return 0;
}

LOTA_COMMAND("merge", "Merge a LoTA-QAF adapter into its quantized model (exact)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<lota::merge::MergeOptions>();
    sub.add_option("--model", o->model, "quantized model directory")->required();
    sub.add_option("--adapter", o->adapter, "LoTA-QAF adapter directory (lota train output)")->required();
    sub.add_option("--out", o->out, "merged model directory")->required();
    sub.add_flag("--verify", o->verify, "require bit-identical logits of adapter and merged model on sample inputs");
    sub.add_option("--verify-len", o->verify_len, "tokens per sample sequence")->capture_default_str();
    lota::cli::add_seed_flag(sub, o->seed);
    return [o] { return run_merge(*o); };
});

}  // namespace
