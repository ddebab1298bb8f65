// The GPTQ dequantization op on the CPU (see dequant.h), the twin of dequant_cuda.cu.
//
// Row k of W needs one shift of one word row of qweight (Note [GPTQ bit stream]): its codes sit at bit
// (k·b) mod 32 of word row k·b/32 in every column, and only for 3 bits at the rows where a code straddles two
// words (k·3 mod 32 = 30 or 31) is the next word row ORed in. So a row is one loop over its N columns that
// vectorises, with kernels::dequant_value's operations in its order (Q − Z exact, + F, · S). The scales of the
// row's group are widened to float32 once per group a task meets (contiguous groups: once per group).
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_simd.h"
#include "kernels/dequant.h"
#include "kernels/dequant_formula.h"

namespace lota::kernels {
namespace {

// Row k's codes as (w0 >> shift | w1 << (32 − shift)) & mask, w1 null unless they straddle, through
// kernels::dequant_value; f null without LoTA offset (adding 0.0f to the integer difference is exact).
LOTA_CPU_CLONES void dequant_row(const int32_t* w0, const int32_t* w1, int shift, uint32_t mask, const int32_t* z,
                                 const float* s, const float* f, int64_t N, float* out) {
    const auto u = [](int32_t v) { return static_cast<uint32_t>(v); };
    if (w1 == nullptr && f == nullptr) {
        for (int64_t n = 0; n < N; ++n)
            out[n] = dequant_value(static_cast<int32_t>((u(w0[n]) >> shift) & mask), z[n], s[n], 0.0f);
    } else if (w1 == nullptr) {
        for (int64_t n = 0; n < N; ++n)
            out[n] = dequant_value(static_cast<int32_t>((u(w0[n]) >> shift) & mask), z[n], s[n], f[n]);
    } else {  // 3 bits, a straddling row: shift is 30 or 31
        for (int64_t n = 0; n < N; ++n) {
            const uint32_t q = ((u(w0[n]) >> shift) | (u(w1[n]) << (32 - shift))) & mask;
            out[n] = dequant_value(static_cast<int32_t>(q), z[n], s[n], f != nullptr ? f[n] : 0.0f);
        }
    }
}

template <typename T>
void dequant_cpu_typed(const int32_t* qweight, const int32_t* zeros, const c10::Half* scales, const int32_t* g_idx,
                       const float* offset, int64_t K, int64_t N, int bits, T* out) {
    const uint32_t mask = (1u << bits) - 1u;
    at::parallel_for(0, K, 16, [&](int64_t k0, int64_t k1) {
        std::vector<float> s(N);                                   // the current group's scales in float32
        std::vector<float> row(std::is_same_v<T, float> ? 0 : N);  // a row before its rounding to T
        int64_t cached = -1;
        for (int64_t k = k0; k < k1; ++k) {
            const int64_t g = g_idx[k];
            if (g != cached) {
                for (int64_t n = 0; n < N; ++n) s[n] = static_cast<float>(scales[g * N + n]);
                cached = g;
            }
            const int64_t bit = k * bits, w = bit >> 5;
            const int shift = static_cast<int>(bit & 31);
            const int32_t* w1 = shift + bits > 32 ? qweight + (w + 1) * N : nullptr;
            float* dst = std::is_same_v<T, float> ? reinterpret_cast<float*>(out + k * N) : row.data();
            dequant_row(qweight + w * N, w1, shift, mask, zeros + g * N, s.data(), offset ? offset + g * N : nullptr, N,
                        dst);
            if constexpr (!std::is_same_v<T, float>)
                for (int64_t n = 0; n < N; ++n) out[k * N + n] = static_cast<T>(row[n]);
        }
    });
}

}  // namespace

void dequant_cpu(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                 const at::Tensor& g_idx, const at::Tensor& offset, int bits, at::Tensor& out) {
    const int64_t K = g_idx.size(0), N = qweight.size(1);
    const float* f = offset.defined() ? offset.data_ptr<float>() : nullptr;
    const int32_t* qw = qweight.data_ptr<int32_t>();
    const int32_t* z = zeros.data_ptr<int32_t>();
    const c10::Half* s = scales.data_ptr<c10::Half>();
    const int32_t* gi = g_idx.data_ptr<int32_t>();
    switch (out.scalar_type()) {
        case at::kFloat: dequant_cpu_typed(qw, z, s, gi, f, K, N, bits, out.data_ptr<float>()); break;
        case at::kHalf: dequant_cpu_typed(qw, z, s, gi, f, K, N, bits, out.data_ptr<c10::Half>()); break;
        case at::kBFloat16: dequant_cpu_typed(qw, z, s, gi, f, K, N, bits, out.data_ptr<c10::BFloat16>()); break;
        default: break;  // dequant_forward allows only the three types above
    }
}

}  // namespace lota::kernels
