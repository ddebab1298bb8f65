// lota_export_gptq: runs lota's GPTQ (quant/gptq.h) on one layer read from a file and writes what it
// produced, for tests/py/test_gptq_reference.py to compare with its transcription of the reference
// algorithm. Not a test by itself and not part of the CLI.
//
//   lota_export_gptq IN OUT BITS GROUP_SIZE SYM ACT_ORDER BATCHES
//
// IN (safetensors): "W" float32 [N, K], "X" float32 [n, K]. X is added to the Hessian in BATCHES
// equal slices (the running mean of add_batch). OUT (safetensors): "codes" int32 [K, N] (unpacked),
// "scales" float16 [G, N], "zeros" int32 [G, N], "g_idx" int32 [K], "H" float32 [K, K] (2·XᵀX/n as
// accumulated), "loss" and "rel_error" float64 [1], "dead_columns" int64 [1].
#include <cstdio>
#include <exception>
#include <string>

#include <ATen/ATen.h>

#include "io/safetensors.h"
#include "quant/gptq.h"
#include "quant/quantized_weight.h"

namespace {

int run(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s IN OUT BITS GROUP_SIZE SYM ACT_ORDER BATCHES\n", argv[0]);
        return 2;
    }
    const lota::io::SafetensorsFile in(argv[1]);
    const at::Tensor W = in.load("W"), X = in.load("X");
    lota::quant::QuantOptions opts;
    opts.bits = std::stoi(argv[3]);
    opts.group_size = std::stoi(argv[4]);
    opts.sym = std::stoi(argv[5]) != 0;
    opts.act_order = std::stoi(argv[6]) != 0;
    const int64_t batches = std::stoll(argv[7]);
    lota::quant::Gptq gptq(W.size(1));
    for (const at::Tensor& part : X.chunk(batches, 0)) gptq.add_batch(part);
    const lota::quant::GptqResult r = gptq.quantize(W, opts);
    const auto scalar = [](double v) { return at::full({1}, v, at::kDouble); };
    lota::io::safetensors_write(argv[2], {{"codes", lota::quant::unpack_codes(r.qw).to(at::kInt)},
                                          {"scales", r.qw.scales},
                                          {"zeros", r.qw.zeros},
                                          {"g_idx", r.qw.g_idx},
                                          {"H", gptq.hessian()},
                                          {"loss", scalar(r.loss)},
                                          {"rel_error", scalar(r.rel_error)},
                                          {"dead_columns", at::full({1}, r.dead_columns, at::kLong)}});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lota_export_gptq: %s\n", e.what());
        return 1;
    }
}
