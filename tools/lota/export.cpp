// lota export: writes a model for another engine. --format gguf: one .gguf file for llama.cpp
// (exporter/gguf_export.h); hf: a dense HF directory (exporter/hf_export.h); gptq: a GPTQ v1 checkpoint
// without LoTA offsets (exporter/gptq_export.h). This file parses the flags, calls the exporter and
// prints its report.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "exporter/export_options.h"
#include "exporter/gguf_export.h"
#include "exporter/gptq_export.h"
#include "exporter/hf_export.h"
#include "util/check.h"
#include "util/strfmt.h"

namespace {

struct ExportFlags {
    lota::exporter::ExportOptions opts;
    std::string format = "gguf";
    bool json = false;
};

int run_export_hf(const ExportFlags& f) {
    const lota::exporter::ExportOptions& o = f.opts;
    const lota::exporter::HfExportReport r = lota::exporter::hf_export(o);
    const nlohmann::json j = {{"out", o.out},
                              {"format", f.format},
                              {"dtype", o.dtype},
                              {"dequantized_tensors", r.dequantized},
                              {"dense_tensors", r.dense},
                              {"max_abs_rounding_error", r.max_abs_error},
                              {"max_rounding_grid_steps", r.max_error_steps}};
    const std::string text = lota::strfmt("exported %s -> %s (%s): %lld quantized linears dequantized to "
                                          "S·(Q − Z + F) and rounded (largest rounding %.3g grid steps), %lld "
                                          "tensors converted; largest |rounding error| %.3g",
                                          o.model.c_str(), o.out.c_str(), o.dtype.c_str(), (long long)r.dequantized,
                                          r.max_error_steps, (long long)r.dense, r.max_abs_error);
    lota::cli::result_print(f.json, j, text);
    return 0;
}

int run_export_gptq(const ExportFlags& f) {
    const lota::exporter::ExportOptions& o = f.opts;
    const lota::exporter::GptqExportReport r = lota::exporter::gptq_export(o);
    const nlohmann::json j = {{"out", o.out},
                              {"format", f.format},
                              {"linears", r.linears},
                              {"offsets_rounded", r.offsets_rounded},
                              {"zeros_clamped", r.clamped},
                              {"max_error_grid_steps", r.max_error_steps}};
    std::string text = lota::strfmt("exported %s -> %s (GPTQ v1): %lld quantized linears", o.model.c_str(),
                                    o.out.c_str(), (long long)r.linears);
    text += r.offsets_rounded == 0
                ? ", lossless"
                : lota::strfmt("; LoTA offsets of %lld rounded into the zero points (largest error %.3g grid steps%s)",
                               (long long)r.offsets_rounded, r.max_error_steps,
                               r.clamped ? lota::strfmt(", %lld zeros clamped to the grid", (long long)r.clamped).c_str()
                                         : "");
    lota::cli::result_print(f.json, j, text);
    return 0;
}

int run_export(const ExportFlags& f) {
    if (f.format == "hf") return run_export_hf(f);
    if (f.format == "gptq") return run_export_gptq(f);
    LOTA_CHECK(f.format == "gguf", "--format %s is not built (gguf, hf, gptq)", f.format.c_str());
    const lota::exporter::ExportOptions& o = f.opts;
    const lota::exporter::GgufExportReport r = lota::exporter::gguf_export(o);
    const nlohmann::json j = {{"out", o.out},
                              {"format", f.format},
                              {"q4_1_tensors", r.q4_1},
                              {"lossy_f16_tensors", r.lossy_f16},
                              {"dense_tensors", r.dense},
                              {"max_m_rounding_grid_steps", r.max_m_error_steps},
                              {"max_lossy_abs_error", r.max_lossy_error}};
    std::string text = lota::strfmt("exported %s -> %s: %lld Q4_1 (lossless up to m's fp16 rounding: at most %.3g "
                                    "grid steps), %lld dense (norms and biases in F32, the others as stored)",
                                    o.model.c_str(), o.out.c_str(), (long long)r.q4_1, r.max_m_error_steps,
                                    (long long)r.dense);
    if (r.lossy_f16)
        text += lota::strfmt(", %lld written lossy as F16 (max |error| %.3g)", (long long)r.lossy_f16,
                             r.max_lossy_error);
    lota::cli::result_print(f.json, j, text);
    return 0;
}

}  // namespace

LOTA_COMMAND("export", "write a model for another engine: --format gguf (llama.cpp), hf (dense) or gptq", [](CLI::App& sub) {
    auto f = std::make_shared<ExportFlags>();
    lota::exporter::ExportOptions& o = f->opts;
    lota::cli::add_model_flag(sub, o.model, "16-bit, GPTQ or LoTA-merged");
    lota::cli::add_out_flag(sub, o.out, "the .gguf file, or the hf directory (must not exist unless --overwrite)")
        ->required();
    sub.add_option("--format", f->format,
                   "gguf: one .gguf file for llama.cpp; hf: a dense HF directory; gptq: a GPTQ v1 checkpoint "
                   "(integer zeros, no LoTA offsets) for GPTQModel and transformers")
        ->check(CLI::IsMember({"gguf", "hf", "gptq"}))
        ->capture_default_str();
    sub.add_option("--dtype", o.dtype, "hf: dtype of the written weights (bf16 or f16)")
        ->check(CLI::IsMember({"bf16", "f16"}))
        ->capture_default_str();
    sub.add_flag("--allow-lossy", o.allow_lossy,
                 "gguf: write quantized linears that Q4_1 cannot hold exactly (8-bit, act-order, groups not a "
                 "multiple of 32) as F16 instead of refusing; gptq: round Z − F to integer zero points");
    sub.add_flag("--overwrite", o.overwrite, "replace an existing --out file");
    lota::cli::add_json_flag(sub, f->json);
    return lota::cli::CommandRun([f]() { return run_export(*f); });
});
