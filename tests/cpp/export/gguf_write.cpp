// lota_export_gguf_write: writes a GGUF file with io::GgufWriter from tensors read from a file, for
// tests/py/test_gguf_writer.py to read back with gguf-py. Not a test by itself and not part of the CLI.
//
//   lota_export_gguf_write IN OUT
//
// IN (safetensors): "codes" int32 [R, C], "d" and "m" float16 [R, C/32] (-> Q4_1 tensor "q4_1.weight"),
// "f32", "f16", "bf16" (-> tensors of those names and types, as given). OUT gets them plus metadata
// of every type the writer has: t.str "hello", t.u32 7, t.i32 -3, t.f32 0.5, t.bool true,
// t.strs ["a", "", "ü"], t.i32s [1, -2, 3].
#include <cstdio>
#include <exception>
#include <string>

#include <ATen/ATen.h>

#include "io/gguf_writer.h"
#include "io/safetensors.h"

namespace {

int run(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    const lota::io::SafetensorsFile in(argv[1]);
    lota::io::GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string("t.str", "hello");
    w.set_u32("t.u32", 7);
    w.set_i32("t.i32", -3);
    w.set_f32("t.f32", 0.5f);
    w.set_bool("t.bool", true);
    w.set_strings("t.strs", {"a", "", "\xc3\xbc"});
    w.set_i32s("t.i32s", {1, -2, 3});
    const at::Tensor codes = in.load("codes");
    w.add_tensor("q4_1.weight", lota::io::GgmlType::Q4_1, codes.sizes().vec(),
                 lota::io::q4_1_blocks(codes, in.load("d"), in.load("m")));
    const std::pair<const char*, lota::io::GgmlType> dense[] = {
        {"f32", lota::io::GgmlType::F32}, {"f16", lota::io::GgmlType::F16}, {"bf16", lota::io::GgmlType::BF16}};
    for (const auto& [name, type] : dense) {
        const at::Tensor t = in.load(name);
        w.add_tensor(name, type, t.sizes().vec(), lota::io::tensor_bytes(t));
    }
    w.write(argv[2]);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lota_export_gguf_write: %s\n", e.what());
        return 1;
    }
}
