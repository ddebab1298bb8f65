// lota import: a GGUF file (llama architecture) -> an HF model directory (config.json,
// model.safetensors, tokenizer files). With --raw, every tensor dequantized to f32 under its GGUF
// name into one .safetensors file instead (for inspection and dequantization tests).
#include <memory>
#include <string>

#include "args.h"
#include "commands.h"
#include "io/gguf_import.h"

namespace {

struct ImportCliOptions {
    lota::io::GgufImportOptions import;
    bool raw = false;
};

int run_import(const ImportCliOptions& o) {
    if (o.raw)
        lota::io::gguf_dump_tensors(o.import.gguf_path, o.import.out_dir);
    else
        lota::io::gguf_import(o.import);
    return 0;
}

}  // namespace

LOTA_COMMAND("import", "convert a GGUF file (llama) into an HF model directory", [](CLI::App& sub) {
    auto o = std::make_shared<ImportCliOptions>();
    sub.add_option("--gguf", o->import.gguf_path, "input .gguf file")->required();
    sub.add_option("--out", o->import.out_dir, "output model directory (must not exist or be empty)")->required();
    lota::cli::add_dtype_flag(sub, o->import.dtype);
    sub.add_flag("--raw", o->raw,
                 "write every tensor dequantized to f32 under its GGUF name into the .safetensors file --out "
                 "(no renaming, no config)");
    return lota::cli::CommandRun([o]() { return run_import(*o); });
});
