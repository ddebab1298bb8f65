// Per-layer cost of the two LoTA-QAF training pieces that the LoRA baseline does not have, on the
// Llama-3.1-8B layer shapes: the per-step re-merge (fused kernel vs the tensor-op formulation) and the
// per-micro-batch adapter backward from x and ∂L/∂y (Gw = xᵀ·∂y, then ∂A and ∂B; 16-bit Gw on tensor
// cores vs the float32 path). Each time is the median of 7 synchronised batches of 10 calls after a
// warm-up. One JSON line per measurement, then the per-step totals for the 32-layer model (q, k, v, o,
// gate, up, down per layer). Usage:
//   bench_lota_step [--bits 4] [--group 64] [--rank 64] [--tokens 5120] [--layers 32]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/types.h>
#ifdef LOTA_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "quant/lota.h"
#include "quant/lota_remerge.h"
#include "quant/quantized_weight.h"

namespace {

template <class F>
double seconds_per_call(F&& f) {
#ifdef LOTA_WITH_CUDA
    for (int i = 0; i < 3; ++i) f();
    std::vector<double> t;
    for (int r = 0; r < 7; ++r) {
        c10::cuda::device_synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) f();
        c10::cuda::device_synchronize();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
#else
    (void)f;
    return 0;
#endif
}

// An adapter whose product fires markers on about `frac` of the columns, as later in training: A is
// +1 at 90 % of its entries (0 elsewhere), the chosen rows of B are all +1 (P ≈ 0.9·r > ω there)
// and the other rows sparse ternary (|P| ≪ ω).
std::pair<at::Tensor, at::Tensor> adapter(int64_t r, int64_t K, int64_t N, double frac) {
    const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
    const at::Tensor a = at::rand({r, K}, cuda).gt(0.1).to(at::kChar);
    const at::Tensor u = at::rand({N, r}, cuda);
    const at::Tensor sparse = u.lt(0.1).to(at::kChar) - u.gt(0.9).to(at::kChar);
    const at::Tensor chosen = at::rand({N, 1}, cuda).lt(frac);
    return {a.contiguous(), at::where(chosen, at::ones_like(sparse), sparse).contiguous()};
}

}  // namespace

int main(int argc, char** argv) {
    int bits = 4, group = 64, rank = 64, layers = 32;
    int64_t tokens = 5120;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--bits") bits = std::stoi(v);
        else if (k == "--group") group = std::stoi(v);
        else if (k == "--rank") rank = std::stoi(v);
        else if (k == "--tokens") tokens = std::stoll(v);
        else if (k == "--layers") layers = std::stoi(v);
        else {
            std::fprintf(stderr, "bench_lota_step: unknown option %s\n", k.c_str());
            return 1;
        }
    }
    if (!at::hasCUDA()) {
        std::fprintf(stderr, "bench_lota_step: needs a CUDA device\n");
        return 1;
    }
    const torch::NoGradGuard no_grad;
    const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
    const double omega = 0.75 * rank;
    struct Shape { const char* name; int64_t K, N; };
    const Shape shapes[] = {{"q", 4096, 4096}, {"k", 4096, 1024}, {"v", 4096, 1024}, {"o", 4096, 4096},
                            {"gate", 4096, 14336}, {"up", 4096, 14336}, {"down", 14336, 4096}};
    double total[4] = {0, 0, 0, 0};  // remerge fused, remerge ops, backward 16-bit, backward float32
    for (const Shape& s : shapes) {
        const int64_t K = s.K, N = s.N, G = K / group, maxq = (1 << bits) - 1;
        lota::quant::QuantizedWeight qw;
        qw.bits = bits;
        qw.group_size = group;
        qw.in_features = K;
        qw.out_features = N;
        qw.qweight = lota::quant::pack_codes(at::randint(0, maxq + 1, {K, N}, cuda.dtype(at::kInt)), bits);
        qw.zeros = at::full({G, N}, (maxq + 1) / 2, cuda.dtype(at::kInt));
        qw.scales = (at::rand({G, N}, cuda) * 0.01 + 0.001).to(at::kHalf);
        qw.g_idx = at::arange(K, cuda.dtype(at::kInt)).div(group, "floor").to(at::kInt);
        const lota::quant::LotaGroups groups = lota::quant::lota_groups_make(qw.g_idx, G);
        // A previous adapter in place and markers that fire, as in the middle of training.
        const auto [a0, b0] = adapter(rank, K, N, 0.03);
        const auto [a1, b1] = adapter(rank, K, N, 0.03);
        const lota::quant::LotaMergedCodes start =
            lota::quant::lota_remerge(lota::quant::lota_merged_codes_init(qw), qw, groups, a0, b0, omega).codes;
        const double t_fused = seconds_per_call([&] { lota::quant::lota_remerge(start, qw, groups, a1, b1, omega); });
        const double t_ops = seconds_per_call([&] { lota::quant::lota_remerge_ops(start, qw, groups, a1, b1, omega); });
        const at::Tensor moved = lota::quant::lota_remerge(start, qw, groups, a1, b1, omega).stats;

        const at::Tensor x = at::randn({tokens, K}, cuda.dtype(at::kBFloat16));
        const at::Tensor dy = at::randn({tokens, N}, cuda.dtype(at::kBFloat16)) * 1e-3;
        const double t_bw16 = seconds_per_call([&] {
            const at::Tensor gw = at::mm(x.t(), dy);
            lota::quant::lota_backward(gw, qw.scales, groups, omega, a1, b1, true);
        });
        const double t_bw32 = seconds_per_call([&] {
            const at::Tensor gw = at::mm(x.t(), dy).to(at::kFloat);
            lota::quant::lota_backward(gw, qw.scales, groups, omega, a1, b1, true);
        });
        const double t_gemm = seconds_per_call([&] { at::mm(x.t(), dy); });
        std::printf("{\"layer\":\"%s\",\"K\":%lld,\"N\":%lld,\"bits\":%d,\"group\":%d,\"rank\":%d,\"tokens\":%lld,"
                    "\"moved_frac\":%.4f,\"remerge_fused_ms\":%.3f,\"remerge_ops_ms\":%.3f,"
                    "\"backward16_ms\":%.3f,\"backward32_ms\":%.3f,\"gw_gemm_ms\":%.3f}\n",
                    s.name, (long long)K, (long long)N, bits, group, rank, (long long)tokens,
                    (moved[0].item<double>() + moved[1].item<double>()) / double(K * N), t_fused * 1e3, t_ops * 1e3,
                    t_bw16 * 1e3, t_bw32 * 1e3, t_gemm * 1e3);
        total[0] += t_fused, total[1] += t_ops, total[2] += t_bw16, total[3] += t_bw32;
    }
    std::printf("{\"what\":\"per step, %d layers\",\"remerge_fused_s\":%.4f,\"remerge_ops_s\":%.4f,"
                "\"backward16_s_per_microbatch\":%.4f,\"backward32_s_per_microbatch\":%.4f}\n",
                layers, total[0] * layers, total[1] * layers, total[2] * layers, total[3] * layers);
    return 0;
}
