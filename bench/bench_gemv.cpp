// Decode-sized quantized product benchmark: for a layer of K x N, M rows of x and
// b-bit codes, times kernels::quant_gemv (packed codes read directly), the dequantize + GEMM path
// QuantLinear takes otherwise, and a dense bf16 GEMM; reports the kernel's bandwidth against
// the measured device-to-device copy bandwidth. Each time is the median of 7 replays of a CUDA
// graph holding 100 calls (after a warm-up), i.e. GPU time without the host's launch cost, which
// for a ~20 µs kernel is of the same order; the kernel's launched-from-the-host time is reported
// too, and a one-element fill under the same method (the fixed cost of one graph node). One JSON line per
// measurement. --copies C: the calls cycle through C random copies of the layer, so that copies larger than
// the GPU's L2 cache together are read from device memory as in a decode step (1: one layer's codes, read
// from L2 when they fit). Both tensor-core kernels are timed too: the codes as mma's A operand (up to 8 rows;
// 0 above) and as B (tc_codes_a_us, tc_codes_b_us). Usage:
//   bench_gemv [--shapes 4096x14336,14336x4096] [--bits 4] [--group 128] [--rows 1,4,8,16] [--offset 0|1]
//              [--copies 1] [--sweep 0|1]   (1: the plan knobs of both kernels swept instead)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/types.h>
#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "kernels/quant_gemv.h"
#include "model/quant_linear.h"
#include "quant/quantized_weight.h"

namespace {

std::vector<int64_t> parse_list(const std::string& s) {
    std::vector<int64_t> v;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        v.push_back(std::stoll(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
        pos = comma == std::string::npos ? s.size() : comma + 1;
    }
    return v;
}

#ifdef LOTA_WITH_CUDA
// Seconds per call: `batch` makes 100 calls; the median over 7 synchronised batches.
template <class B>
double median_per_call(B&& batch) {
    std::vector<double> t;
    for (int r = 0; r < 7; ++r) {
        c10::cuda::device_synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        batch();
        c10::cuda::device_synchronize();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 100);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
#endif

// Host-launched: 100 calls in a loop (includes the host's launch cost when it exceeds the GPU time).
template <class F>
double seconds_per_call(F&& f) {
#ifdef LOTA_WITH_CUDA
    for (int i = 0; i < 20; ++i) f();
    return median_per_call([&] {
        for (int i = 0; i < 100; ++i) f();
    });
#else
    (void)f;
    return 0;
#endif
}

// GPU time: 100 calls captured in one CUDA graph, replayed.
template <class F>
double graph_seconds_per_call(F&& f) {
#ifdef LOTA_WITH_CUDA
    for (int i = 0; i < 5; ++i) f();
    c10::cuda::device_synchronize();
    at::cuda::CUDAGraph graph;
    {
        const at::cuda::CUDAStreamGuard guard(at::cuda::getStreamFromPool());
        graph.capture_begin();
        for (int i = 0; i < 100; ++i) f();
        graph.capture_end();
    }
    graph.replay();
    return median_per_call([&] { graph.replay(); });
#else
    (void)f;
    return 0;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    std::string shapes = "4096x14336,14336x4096", rows = "1,4,8,16";
    int bits = 4, group = 128, copies = 1;
    bool offset = false, sweep = false;  // sweep: the tensor-core kernel's plan knobs instead of the comparisons
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--shapes") shapes = v;
        else if (k == "--bits") bits = std::stoi(v);
        else if (k == "--group") group = std::stoi(v);
        else if (k == "--rows") rows = v;
        else if (k == "--offset") offset = v != "0";
        else if (k == "--sweep") sweep = v != "0";
        else if (k == "--copies") copies = std::max(1, std::stoi(v));
        else {
            std::fprintf(stderr, "bench_gemv: unknown option %s\n", k.c_str());
            return 1;
        }
    }
    if (!at::hasCUDA()) {
        std::fprintf(stderr, "bench_gemv: needs a CUDA device\n");
        return 1;
    }
    const torch::NoGradGuard no_grad;
    const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
    // Device-to-device copy bandwidth (read + write) of a 2 GiB buffer: the reference "measured HBM bandwidth".
    const at::Tensor src = at::empty({int64_t(1) << 29}, cuda.dtype(at::kFloat)), dst = at::empty_like(src);
    const double tcopy = seconds_per_call([&] { dst.copy_(src); });
    const double copy_bw = 2.0 * src.nbytes() / tcopy;
    std::printf("{\"what\":\"copy\",\"bytes\":%lld,\"seconds\":%.6g,\"gb_per_s\":%.1f}\n", (long long)src.nbytes(),
                tcopy, copy_bw / 1e9);
    for (const std::string& shape : [&] {
             std::vector<std::string> v;
             size_t pos = 0;
             while (pos < shapes.size()) {
                 size_t comma = shapes.find(',', pos);
                 v.push_back(shapes.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
                 pos = comma == std::string::npos ? shapes.size() : comma + 1;
             }
             return v;
         }()) {
        const int64_t K = std::stoll(shape.substr(0, shape.find('x'))), N = std::stoll(shape.substr(shape.find('x') + 1));
        const int64_t G = group > 0 ? K / group : 1;
        std::vector<lota::quant::QuantizedWeight> layers(copies);
        for (lota::quant::QuantizedWeight& w : layers) {
            w.bits = bits;
            w.group_size = group;
            w.in_features = K;
            w.out_features = N;
            w.qweight = at::randint(INT32_MIN, INT32_MAX, {K * bits / 32, N}, cuda.dtype(at::kInt));
            w.zeros = at::randint(0, 1 << bits, {G, N}, cuda.dtype(at::kInt));
            w.scales = (at::rand({G, N}, cuda.dtype(at::kFloat)) * 0.01).to(at::kHalf);
            w.g_idx = at::arange(K, cuda.dtype(at::kInt)).div(group > 0 ? group : K, "floor").to(at::kInt);
            if (offset) w.offset = at::rand({G, N}, cuda.dtype(at::kFloat)) - 0.5;
        }
        const lota::quant::QuantizedWeight& qw = layers[0];
        lota::model::QuantLinear layer(qw, std::make_shared<lota::model::DequantBuffer>());
        const int64_t group_rows = lota::kernels::quant_gemv_group_rows(qw.g_idx, G);
        const at::Tensor W16 = at::randn({N, K}, cuda.dtype(at::kBFloat16));
        const double wbytes = double(qw.qweight.nbytes()) + qw.scales.nbytes() + qw.zeros.nbytes() +
                              (offset ? double(qw.offset.nbytes()) : 0.0);
        for (int64_t M : parse_list(rows)) {
            const at::Tensor x = at::randn({M, K}, cuda.dtype(at::kBFloat16));
            const double bytes = wbytes + 2.0 * M * (K + N);  // codes, scales, zeros (offsets), x and y
            lota::kernels::GemvTuning tuning;  // the plan the kernel runs with; the sweeps below change it
            int64_t call = 0;                    // cycles through the copies (captured in the graph's order)
            const auto kernel = [&] {
                const lota::quant::QuantizedWeight& w = layers[call++ % copies];
                lota::kernels::quant_gemv(x, w.qweight, w.zeros, w.scales, w.g_idx, w.offset, {}, bits, group_rows,
                                          tuning);
            };
            if (sweep) {
                // The plan's knobs: the SIMT kernel's blocks per SM (-1: as many as fit, one wave), then
                // every batch depth and wave count of the tensor-core kernel.
                for (int bps : {-1, 2, 4, 8, 12, 16, 32}) {
                    tuning = {0, 0, 0, 0.0, bps, false};
                    const double t = graph_seconds_per_call(kernel);
                    std::printf("{\"what\":\"simt_sweep\",\"K\":%lld,\"N\":%lld,\"bits\":%d,\"M\":%lld,"
                                "\"copies\":%d,\"blocks_per_sm\":%d,\"simt_us\":%.2f,\"gb_per_s\":%.1f}\n",
                                (long long)K, (long long)N, bits, (long long)M, copies, bps, t * 1e6,
                                bytes / t / 1e9);
                }
                // K ranges for 0.5, 1 or 2 waves (tc_waves), or for whole waves of blocks that cost their steps
                // per warp + 2, 4 or 8 (tc_block_steps).
                const std::pair<double, double> splits[] = {{0.5, 0}, {1.0, 0}, {2.0, 0}, {0, 2}, {0, 4}, {0, 8}};
                // Codes as mma's B operand, or as A (up to 8 rows) with x in registers or through shared memory.
                for (const auto& [a_rows, x_smem] : {std::pair<int, int>{-1, 0}, {8, -1}, {8, 1}})
                    for (int batch : {2, 4, 8})
                        for (const auto& [waves, block_steps] : splits) {
                            if (a_rows > 0 && M > 8) continue;
                            tuning = {1, a_rows, batch, waves, 0, true, 0, block_steps, x_smem};
                            const double t = graph_seconds_per_call(kernel);
                            std::printf("{\"what\":\"tc_sweep\",\"K\":%lld,\"N\":%lld,\"bits\":%d,\"M\":%lld,"
                                        "\"copies\":%d,\"codes_as\":\"%s\",\"x_smem\":%d,\"batch\":%d,"
                                        "\"waves\":%.1f,\"block_steps\":%.0f,\"tc_us\":%.2f,\"gb_per_s\":%.1f}\n",
                                        (long long)K, (long long)N, bits, (long long)M, copies, a_rows > 0 ? "A" : "B",
                                        x_smem > 0, batch, waves, block_steps, t * 1e6, bytes / t / 1e9);
                        }
                continue;
            }
            const double th = seconds_per_call(kernel);
            const double tk = graph_seconds_per_call(kernel);
            tuning.tc_a_max_rows = 8;  // the two tensor-core kernels side by side (as A: up to 8 rows)
            const double ta = M <= 8 ? graph_seconds_per_call(kernel) : 0.0;
            tuning.tc_a_max_rows = -1;
            const double tb16 = graph_seconds_per_call(kernel);
            tuning = {};
            tuning.tensor_cores = false;
            const double ts = graph_seconds_per_call(kernel);
            lota::model::QuantLinearOptions dequant_gemm;  // the layer without the packed-code kernel
            dequant_gemm.gemv_max_rows = 0;
            layer.set_options(dequant_gemm);
            const double td = graph_seconds_per_call([&] { layer.forward(x); });
            layer.set_options({});
            const double tb = graph_seconds_per_call([&] { at::linear(x, W16); });
            // Reference for the same graph method: filling one float (the fixed cost of a graph node).
            const at::Tensor one = at::empty({1}, cuda.dtype(at::kFloat));
            const double te = graph_seconds_per_call([&] { one.fill_(1.0f); });
            std::printf("{\"what\":\"gemv\",\"K\":%lld,\"N\":%lld,\"bits\":%d,\"group\":%d,\"offset\":%s,\"M\":%lld,"
                        "\"kernel_us\":%.2f,\"tc_codes_a_us\":%.2f,\"tc_codes_b_us\":%.2f,\"simt_kernel_us\":%.2f,"
                        "\"kernel_host_launched_us\":%.2f,\"dequant_gemm_us\":%.2f,\"bf16_gemm_us\":%.2f,\"kernel_gb_per_s\":%.1f,"
                        "\"fraction_of_copy_bw\":%.3f,\"empty_node_us\":%.2f}\n",
                        (long long)K, (long long)N, bits, group, offset ? "true" : "false", (long long)M, tk * 1e6,
                        ta * 1e6, tb16 * 1e6, ts * 1e6, th * 1e6, td * 1e6, tb * 1e6, bytes / tk / 1e9,
                        bytes / tk / copy_bw, te * 1e6);
        }
    }
    return 0;
}
