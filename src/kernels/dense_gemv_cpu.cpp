// The decode-sized dense product on the CPU (see dense_gemv.h).
//
// y[m, n] = Σ_k x[m, k]·W[n, k]: every output is a dot product of two contiguous rows. Tiles of
// NT = 4 weight rows × MT = 3 input rows keep 12 accumulators of 8 floats in vector registers (with the
// 3 input vectors and one weight vector of a step, all 16 of AVX2's): 7 loads per 12 FMAs, and enough
// independent sums to hide the FMA latency. A block of 4 weight rows (4·K floats, ≤ 24 KiB for K ≤ 1536)
// is read from memory once and from L1 for every further tile of input rows; blocks are split over the
// threads. On x86-64 CPUs with AVX2 and FMA an AVX2 build of the loops runs (chosen once, at the first
// call); elsewhere the same loops built for the baseline ISA.
#include "kernels/dense_gemv.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "kernels/cpu_simd.h"
#include "util/check.h"

namespace lota::kernels {
namespace {

constexpr int NT = 4;  // weight rows per tile
constexpr int MT = 3;  // input rows per tile

#if defined(__GNUC__)
__attribute__((always_inline)) inline float lanes_sum(v8f v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

// Rows [m, m + R) of y against weight rows wr[0..C) (columns n..n + C): R·C sums of 8 lanes in
// registers. kPin keeps each loaded weight vector in a register (an empty asm that claims to change it);
// without it GCC folds the load into each of its R FMAs.
template <bool kPin, int R, int C>
__attribute__((always_inline)) inline void tile(const float* x, const float* const* wr, float* y, int64_t K,
                                                int64_t N, int64_t m, int64_t n) {
    const int64_t K8 = K - K % 8;
    const float* xr = x + m * K;
    v8f acc[R][C] = {};
    for (int64_t k = 0; k < K8; k += 8) {
        v8f xv[R];
        for (int i = 0; i < R; ++i) xv[i] = load_v8f(xr + i * K + k);
        for (int j = 0; j < C; ++j) {
            v8f wv = load_v8f(wr[j] + k);
            if constexpr (kPin) asm("" : "+x"(wv));
            for (int i = 0; i < R; ++i) acc[i][j] += xv[i] * wv;
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            float sum = lanes_sum(acc[i][j]);
            for (int64_t k = K8; k < K; ++k) sum += xr[i * K + k] * wr[j][k];
            y[(m + i) * N + n + j] = sum;
        }
}

// Weight rows [n0, n1) against all M input rows: tiles of MT input rows (then single rows) × NT weight
// rows, then the last n1 − n0 mod NT weight rows one at a time.
template <bool kPin>
__attribute__((always_inline)) inline void rows_block_impl(const float* x, const float* w, float* y, int64_t M,
                                                           int64_t K, int64_t N, int64_t n0, int64_t n1) {
    int64_t n = n0;
    for (; n + NT <= n1; n += NT) {
        const float* wr[NT];
        for (int j = 0; j < NT; ++j) wr[j] = w + (n + j) * K;
        int64_t m = 0;
        for (; m + MT <= M; m += MT) tile<kPin, MT, NT>(x, wr, y, K, N, m, n);
        for (; m < M; ++m) tile<kPin, 1, NT>(x, wr, y, K, N, m, n);
    }
    for (; n < n1; ++n) {
        const float* wn = w + n * K;
        for (int64_t m = 0; m < M; ++m) tile<kPin, 1, 1>(x, &wn, y, K, N, m, n);
    }
}

#if defined(__x86_64__) && !defined(__clang__)
__attribute__((target("avx2,fma"))) void rows_block_avx2(const float* x, const float* w, float* y, int64_t M,
                                                         int64_t K, int64_t N, int64_t n0, int64_t n1) {
    rows_block_impl<true>(x, w, y, M, K, N, n0, n1);
}
#endif

void rows_block(const float* x, const float* w, float* y, int64_t M, int64_t K, int64_t N, int64_t n0, int64_t n1) {
#if defined(__x86_64__) && !defined(__clang__)
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) return rows_block_avx2(x, w, y, M, K, N, n0, n1);
#endif
    rows_block_impl<false>(x, w, y, M, K, N, n0, n1);
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
