// CPU decode-sized product benchmark: for a layer of K x N, M rows of float32 x and b-bit codes
// (RTN, contiguous groups), times kernels::quant_gemv (the packed-code CPU kernel), the dequantize
// + GEMM path QuantLinear takes for larger inputs, and a dense float32 product of the same shape (what
// an f32 model runs): MKL's GEMM, and for 2–16 rows the dense decode kernel (kernels/dense_gemv.h). Times are the median of R repeats of the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) with one intra-op thread, so a busy machine disturbs them less than
// wall time. One JSON line per measurement. Usage:
//   bench_cpu_gemv [--shapes 576x1536,1536x576,4096x14336] [--bits 2,3,4,8] [--group 32] [--rows 1,16]
//                  [--repeat 15]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/dense_gemv.h"
#include "kernels/quant_gemv.h"
#include "quant/quantized_weight.h"
#include "quant/rtn.h"

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> v;
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t comma = s.find(',', pos);
        v.push_back(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma == std::string::npos ? s.size() : comma + 1;
    }
    return v;
}

double thread_seconds() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

template <class F>
double median_us(int repeat, F&& f) {
    f();  // warm-up
    std::vector<double> t;
    for (int i = 0; i < repeat; ++i) {
        const double t0 = thread_seconds();
        f();
        t.push_back(1e6 * (thread_seconds() - t0));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string shapes = "576x1536,1536x576,4096x14336", bits_list = "2,3,4,8", rows_list = "1,16";
    int group = 32, repeat = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--shapes") shapes = v;
        else if (k == "--bits") bits_list = v;
        else if (k == "--group") group = std::stoi(v);
        else if (k == "--rows") rows_list = v;
        else if (k == "--repeat") repeat = std::stoi(v);
        else {
            std::fprintf(stderr, "bench_cpu_gemv: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    at::set_num_threads(1);
    at::manual_seed(0);
    for (const std::string& shape : split(shapes)) {
        const int64_t K = std::stoll(shape.substr(0, shape.find('x'))), N = std::stoll(shape.substr(shape.find('x') + 1));
        const at::Tensor W = at::randn({N, K}) * 0.05;
        const at::Tensor Wt = W.t().contiguous();  // [K, N], the dense model's operand
        for (const std::string& b : split(bits_list)) {
            lota::quant::QuantOptions o;
            o.bits = std::stoi(b);
            o.group_size = group;
            const lota::quant::QuantizedWeight qw = lota::quant::rtn_quantize(W, o);
            const int64_t group_rows = lota::kernels::quant_gemv_group_rows(qw.g_idx, qw.n_groups());
            const double packed_mb = (qw.qweight.numel() * 4 + qw.zeros.numel() * 4 + qw.scales.numel() * 2) / 1e6;
            for (const std::string& r : split(rows_list)) {
                const int64_t M = std::stoll(r);
                const at::Tensor x = at::randn({M, K});
                const double t_kernel = median_us(repeat, [&] {
                    lota::kernels::quant_gemv(x, qw.qweight, qw.zeros, qw.scales, qw.g_idx, qw.offset, {}, qw.bits,
                                              group_rows);
                });
                const double t_dequant = median_us(repeat, [&] { x.matmul(lota::quant::dequantize(qw, at::kFloat)); });
                const double t_dense = median_us(repeat, [&] { x.matmul(Wt); });
                // The dense decode kernel (2–16 rows) on the same float32 W; 0 where it does not apply.
                const double t_dense_gemv = lota::kernels::dense_gemv_cpu_applies(x, W)
                                                ? median_us(repeat, [&] { lota::kernels::dense_gemv_cpu(x, W); })
                                                : 0.0;
                std::printf("{\"K\":%lld,\"N\":%lld,\"bits\":%d,\"group\":%d,\"rows\":%lld,\"packed_mb\":%.3f,"
                            "\"kernel_us\":%.1f,\"dequant_gemm_us\":%.1f,\"dense_f32_us\":%.1f,"
                            "\"dense_gemv_f32_us\":%.1f,\"kernel_vs_dense\":%.2f}\n",
                            (long long)K, (long long)N, o.bits, group, (long long)M, packed_mb, t_kernel, t_dequant,
                            t_dense, t_dense_gemv, t_dense / t_kernel);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
