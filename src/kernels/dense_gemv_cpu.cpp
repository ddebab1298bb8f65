// The decode-sized dense product on the CPU (see dense_gemv.h).
//
// y[m, n] = Σ_k x[m, k]·W[n, k]: every output is a dot product of two contiguous rows. A bfloat16 W is
// widened to float32 as it is loaded (a bfloat16 is the top half of the float32 of the same value), so
// the products and sums are the float32 ones of the same values, from half the bytes. Tiles of
// NT weight rows × MT input rows keep NT·MT accumulator vectors in registers (with the MT input vectors
// and one weight vector of a step): AVX2, 4 × 3 tiles of 8 floats in 16 registers (7 loads per 12 FMAs);
// AVX-512, 6 × 4 tiles of 16 floats in 29 of its 32 (10 loads per 24 FMAs). A block of NT weight rows
// (NT·K floats, ≤ 36 KiB for K ≤ 1536) is read from memory once and from L1 for every further tile of
// input rows; blocks are split over the threads. The widest build the CPU runs is chosen once, at the
// first call (cpu_simd.h); elsewhere the AVX2 loops built for the baseline ISA. Each output's sum is the same
// function of its row pair for a given vector width (lanes added in a fixed tree).
#include "kernels/dense_gemv.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "kernels/cpu_simd.h"
#include "util/check.h"

namespace lota::kernels {
namespace {

#if defined(__GNUC__)
typedef uint16_t v8u16 __attribute__((vector_size(16)));
typedef uint16_t v16u16 __attribute__((vector_size(32)));

template <typename Vec>
__attribute__((always_inline)) inline Vec load_vec(const float* p) {
    Vec v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

// sizeof(Vec) / 4 bfloat16 values (raw bits) widened to float32.
template <typename Vec>
__attribute__((always_inline)) inline Vec load_vec(const uint16_t* p) {
    using Half = std::conditional_t<sizeof(Vec) == 32, v8u16, v16u16>;
    using Wide = std::conditional_t<sizeof(Vec) == 32, v8u, v16u>;
    Wide wide;
#if defined(__x86_64__)
    if constexpr (sizeof(Vec) == 64) {
        // One vpmovzxwd: GCC widens a 16-lane vector in two 8-lane halves and joins them (three instructions).
        asm("vpmovzxwd %1, %0" : "=v"(wide) : "m"(*reinterpret_cast<const Half*>(p)));
        return (Vec)(wide << 16);
    }
#endif
    Half h;
    __builtin_memcpy(&h, p, sizeof(h));
    wide = __builtin_convertvector(h, Wide);
    return (Vec)(wide << 16);
}

__attribute__((always_inline)) inline float scalar(float v) { return v; }
__attribute__((always_inline)) inline float scalar(uint16_t bits) {
    const uint32_t wide = uint32_t(bits) << 16;
    float v;
    __builtin_memcpy(&v, &wide, sizeof(v));
    return v;
}

__attribute__((always_inline)) inline float lanes_sum(v8f v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

__attribute__((always_inline)) inline float lanes_sum(v16f v) {
    v8f h;
    for (int i = 0; i < 8; ++i) h[i] = v[i] + v[i + 8];
    return lanes_sum(h);
}

// Rows [m, m + R) of y against weight rows wr[0..C) (columns n..n + C): R·C vector sums in registers.
// kPin keeps each loaded weight vector in a register (an empty asm that claims to change it); without it
// GCC folds the load into each of its R FMAs.
template <bool kPin, typename Vec, int R, int C, typename W>
__attribute__((always_inline)) inline void tile(const float* x, const W* const* wr, float* y, int64_t K,
                                                int64_t N, int64_t m, int64_t n) {
    constexpr int L = sizeof(Vec) / sizeof(float);
    const int64_t KL = K - K % L;
    const float* xr = x + m * K;
    Vec acc[R][C] = {};
    for (int64_t k = 0; k < KL; k += L) {
        Vec xv[R];
        for (int i = 0; i < R; ++i) xv[i] = load_vec<Vec>(xr + i * K + k);
        for (int j = 0; j < C; ++j) {
            Vec wv = load_vec<Vec>(wr[j] + k);
            if constexpr (kPin) asm("" : "+v"(wv));
            for (int i = 0; i < R; ++i) acc[i][j] += xv[i] * wv;
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            float sum = lanes_sum(acc[i][j]);
            // One fused multiply-add per element, whatever the compiler would contract: the same sums
            // for either weight type.
            for (int64_t k = KL; k < K; ++k) sum = __builtin_fmaf(xr[i * K + k], scalar(wr[j][k]), sum);
            y[(m + i) * N + n + j] = sum;
        }
}

// Weight rows [n0, n1) against all M input rows: tiles of MT input rows (then single rows) × NT weight
// rows, then the last n1 − n0 mod NT weight rows one at a time.
template <bool kPin, typename Vec, int MT, int NT, typename W>
__attribute__((always_inline)) inline void rows_block_impl(const float* x, const W* w, float* y, int64_t M,
                                                           int64_t K, int64_t N, int64_t n0, int64_t n1) {
    int64_t n = n0;
    for (; n + NT <= n1; n += NT) {
        const W* wr[NT];
        for (int j = 0; j < NT; ++j) wr[j] = w + (n + j) * K;
        if constexpr (std::is_same_v<W, uint16_t>) {
            if (M > MT) {
                // Several tiles of input rows: the block is widened once into a float buffer (which every tile
                // then reads from cache), not once per tile. The same values, so the same sums.
                thread_local std::vector<float> wide;
                if ((int64_t)wide.size() < NT * K) wide.resize(NT * K);
                const float* fr[NT];
                for (int j = 0; j < NT; ++j) {
                    float* dst = wide.data() + j * K;
                    for (int64_t k = 0; k < K; ++k) dst[k] = scalar(wr[j][k]);
                    fr[j] = dst;
                }
                int64_t m = 0;
                for (; m + MT <= M; m += MT) tile<kPin, Vec, MT, NT>(x, fr, y, K, N, m, n);
                for (; m < M; ++m) tile<kPin, Vec, 1, NT>(x, fr, y, K, N, m, n);
                continue;
            }
        }
        int64_t m = 0;
        for (; m + MT <= M; m += MT) tile<kPin, Vec, MT, NT>(x, wr, y, K, N, m, n);
        for (; m < M; ++m) tile<kPin, Vec, 1, NT>(x, wr, y, K, N, m, n);
    }
    for (; n < n1; ++n) {
        const W* wn = w + n * K;
        for (int64_t m = 0; m < M; ++m) tile<kPin, Vec, 1, 1>(x, &wn, y, K, N, m, n);
    }
}

#if defined(__x86_64__) && !defined(__clang__)
template <typename W>
__attribute__((target("avx2,fma"))) void rows_block_avx2(const float* x, const W* w, float* y, int64_t M, int64_t K,
                                                         int64_t N, int64_t n0, int64_t n1) {
    rows_block_impl<true, v8f, 3, 4>(x, w, y, M, K, N, n0, n1);
}

template <typename W>
LOTA_CPU_AVX512 void rows_block_avx512(const float* x, const W* w, float* y, int64_t M,
                                                          int64_t K, int64_t N, int64_t n0, int64_t n1) {
    rows_block_impl<true, v16f, 4, 6>(x, w, y, M, K, N, n0, n1);
}
#endif

template <typename W>
void rows_block(const float* x, const W* w, float* y, int64_t M, int64_t K, int64_t N, int64_t n0, int64_t n1) {
#if defined(__x86_64__) && !defined(__clang__)
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (cpu_vector_floats() == 16) return rows_block_avx512(x, w, y, M, K, N, n0, n1);
    if (avx2) return rows_block_avx2(x, w, y, M, K, N, n0, n1);
#endif
    rows_block_impl<false, v8f, 3, 4>(x, w, y, M, K, N, n0, n1);
}
#endif

}  // namespace

bool dense_gemv_cpu_applies(const at::Tensor& x, const at::Tensor& weight) {
#if defined(__GNUC__)
    const bool bf16 = weight.scalar_type() == at::kBFloat16;
    return x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == at::kFloat &&
           (weight.scalar_type() == at::kFloat || bf16) && x.dim() == 2 && weight.dim() == 2 &&
           x.size(1) == weight.size(1) && x.size(0) >= (bf16 ? 1 : 2) && x.size(0) <= dense_gemv_max_rows(bf16) &&
           x.is_contiguous() && weight.is_contiguous() &&
           !(c10::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad()));
#else
    (void)x;
    (void)weight;
    return false;
#endif
}

at::Tensor dense_gemv_cpu(const at::Tensor& x, const at::Tensor& weight) {
    LOTA_CHECK(dense_gemv_cpu_applies(x, weight), "dense_gemv_cpu: expected float32 x [2..%lld, K] (1..%lld for a "
               "bfloat16 weight) and a float32 or bfloat16 weight [N, K] on the CPU, contiguous, without "
               "gradients; got x %s %s, weight %s %s", (long long)kDenseGemvMaxRows, (long long)kDenseGemvMaxRowsBf16,
               c10::toString(x.scalar_type()), shape_str(x.sizes().vec()).c_str(),
               c10::toString(weight.scalar_type()), shape_str(weight.sizes().vec()).c_str());
    const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
    at::Tensor y = at::empty({M, N}, x.options());
#if defined(__GNUC__)
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const bool bf16 = weight.scalar_type() == at::kBFloat16;
    const float* wf = bf16 ? nullptr : weight.data_ptr<float>();
    const auto* wh = bf16 ? reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>()) : nullptr;
    // Tasks in units of 12 weight rows (whole tiles of either width), at least 6 units (72 rows) a task.
    constexpr int64_t kUnit = 12;
    const int64_t units = (N + kUnit - 1) / kUnit;
    at::parallel_for(0, units, 6, [&](int64_t u0, int64_t u1) {
        const int64_t n0 = u0 * kUnit, n1 = std::min(N, u1 * kUnit);
        if (bf16)
            rows_block(xp, wh, yp, M, K, N, n0, n1);
        else
            rows_block(xp, wf, yp, M, K, N, n0, n1);
    });
#endif
    return y;
}

}  // namespace lota::kernels
