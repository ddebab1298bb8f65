// The decode-sized dense product on the CPU (see dense_gemv.h).
//
// y[m, n] = Σ_k x[m, k]·W[n, k]: every output is a dot product of two contiguous rows. Tiles of
// NT = 4 weight rows × MT = 2 input rows keep 8 accumulators of 8 floats in vector registers (with the
// 4 weight and 2 input vectors of a step, 14 of AVX2's 16), enough independent sums to hide the FMA
// latency. A block of 4 weight rows (4·K floats, ≤ 24 KiB for K ≤ 1536) is read from memory once and
// from L1 for every further pair of input rows; blocks are split over the threads. Compiled for AVX2+FMA
// (x86-64-v3) as well, picked at load time where the CPU has it.
#include "kernels/dense_gemv.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "util/check.h"

namespace lota::kernels {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOTA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LOTA_CPU_CLONES
#endif

constexpr int64_t NT = 4;  // weight rows per tile
constexpr int64_t MT = 2;  // input rows per tile

#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));
#pragma GCC diagnostic ignored "-Wpsabi"  // internal, always inlined: the vector ABI never applies

__attribute__((always_inline)) inline v8f load8(const float* p) {
    v8f v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

__attribute__((always_inline)) inline float lanes_sum(v8f v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

// Weight rows [n0, n1) against all M input rows; K8 = K rounded down to a multiple of 8.
LOTA_CPU_CLONES void rows_block(const float* x, const float* w, float* y, int64_t M, int64_t K, int64_t N,
                                int64_t n0, int64_t n1) {
    const int64_t K8 = K - K % 8;
    int64_t n = n0;
    for (; n + NT <= n1; n += NT) {
        const float* wr[NT] = {w + n * K, w + (n + 1) * K, w + (n + 2) * K, w + (n + 3) * K};
        int64_t m = 0;
        for (; m + MT <= M; m += MT) {
            const float* x0 = x + m * K;
            const float* x1 = x0 + K;
            v8f a0[NT] = {}, a1[NT] = {};
            for (int64_t k = 0; k < K8; k += 8) {
                const v8f u = load8(x0 + k), v = load8(x1 + k);
                for (int j = 0; j < NT; ++j) {
                    const v8f wv = load8(wr[j] + k);
                    a0[j] += u * wv;
                    a1[j] += v * wv;
                }
            }
            for (int j = 0; j < NT; ++j) {
                float s0 = lanes_sum(a0[j]), s1 = lanes_sum(a1[j]);
                for (int64_t k = K8; k < K; ++k) {
                    s0 += x0[k] * wr[j][k];
                    s1 += x1[k] * wr[j][k];
                }
                y[m * N + n + j] = s0;
                y[(m + 1) * N + n + j] = s1;
            }
        }
        for (; m < M; ++m) {  // an odd last row
            const float* x0 = x + m * K;
            v8f a0[NT] = {};
            for (int64_t k = 0; k < K8; k += 8) {
                const v8f u = load8(x0 + k);
                for (int j = 0; j < NT; ++j) a0[j] += u * load8(wr[j] + k);
            }
            for (int j = 0; j < NT; ++j) {
                float s0 = lanes_sum(a0[j]);
                for (int64_t k = K8; k < K; ++k) s0 += x0[k] * wr[j][k];
                y[m * N + n + j] = s0;
            }
        }
    }
    for (; n < n1; ++n) {  // fewer than NT weight rows left
        const float* wn = w + n * K;
        for (int64_t m = 0; m < M; ++m) {
            const float* x0 = x + m * K;
            v8f a = {};
            for (int64_t k = 0; k < K8; k += 8) a += load8(x0 + k) * load8(wn + k);
            float s = lanes_sum(a);
            for (int64_t k = K8; k < K; ++k) s += x0[k] * wn[k];
            y[m * N + n] = s;
        }
    }
}
#endif

}  // namespace

bool dense_gemv_cpu_applies(const at::Tensor& x, const at::Tensor& weight) {
#if defined(__GNUC__)
    return x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == at::kFloat &&
           weight.scalar_type() == at::kFloat && x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1) &&
           x.size(0) >= 2 && x.size(0) <= kDenseGemvMaxRows && x.is_contiguous() && weight.is_contiguous() &&
           !(c10::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad()));
#else
    (void)x;
    (void)weight;
    return false;
#endif
}

at::Tensor dense_gemv_cpu(const at::Tensor& x, const at::Tensor& weight) {
    LOTA_CHECK(dense_gemv_cpu_applies(x, weight), "dense_gemv_cpu: expected float32 x [2..%lld, K] and weight [N, K] "
               "on the CPU, contiguous, without gradients; got x %s, weight %s", (long long)kDenseGemvMaxRows,
               shape_str(x.sizes().vec()).c_str(), shape_str(weight.sizes().vec()).c_str());
    const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
    at::Tensor y = at::empty({M, N}, x.options());
#if defined(__GNUC__)
    const float* xp = x.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    // Tasks of 16 tiles (64 weight rows), at least 8 tiles per thread's share.
    const int64_t tiles = (N + NT - 1) / NT;
    at::parallel_for(0, tiles, 16, [&](int64_t t0, int64_t t1) {
        rows_block(xp, wp, yp, M, K, N, t0 * NT, std::min(N, t1 * NT));
    });
#endif
    return y;
}

}  // namespace lota::kernels
