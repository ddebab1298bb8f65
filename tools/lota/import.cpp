// lota import: a GGUF file (llama architecture) -> an HF model directory (config.json,
// model.safetensors, tokenizer files). With --raw, every tensor dequantized to f32 under its GGUF
// name into one .safetensors file instead (for inspection and dequantization tests).
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "io/gguf_import.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct ImportCliOptions {
    lota::io::GgufImportOptions import;
    bool raw = false, json = false;
};

int run_import(const ImportCliOptions& o) {
    const auto& im = o.import;
    lota::output_path_check(im.out_dir, {{"--gguf", im.gguf_path}});
    if (o.raw)
        lota::output_file_check(im.out_dir, im.overwrite);
    else
        lota::output_dir_check(im.out_dir, im.overwrite);
    if (o.raw)
        lota::io::gguf_dump_tensors(im.gguf_path, im.out_dir);
    else
        lota::io::gguf_import(im);
    const nlohmann::json j = {{"gguf", im.gguf_path}, {"out", im.out_dir}, {"raw", o.raw},
                              {"out_dtype", o.raw ? std::string("f32") : im.dtype}};
    lota::cli::result_print(o.json, j,
                            lota::strfmt("imported %s -> %s%s", im.gguf_path.c_str(), im.out_dir.c_str(),
                                         o.raw ? " (raw f32 tensors)" : ""));
    return 0;
}

}  // namespace

LOTA_COMMAND("import", "convert a GGUF file (llama) into an HF model directory", [](CLI::App& sub) {
    auto o = std::make_shared<ImportCliOptions>();
    sub.add_option("--gguf", o->import.gguf_path, "input .gguf file")->required();
    lota::cli::add_out_flag(sub, o->import.out_dir, "model directory (must not exist or be empty)")->required();
    lota::cli::add_overwrite_flag(sub, o->import.overwrite, "--out (directory, or file with --raw)");
    sub.add_option("--out-dtype", o->import.dtype, "dtype of the weights written to --out: bf16, f16 or f32")
        ->check(CLI::IsMember({"bf16", "f16", "f32"}))
        ->capture_default_str();
    sub.add_flag("--raw", o->raw,
                 "write every tensor dequantized to f32 under its GGUF name into the .safetensors file --out "
                 "(no renaming, no config)");
    lota::cli::add_json_flag(sub, o->json);
    return lota::cli::CommandRun([o]() { return run_import(*o); });
});
