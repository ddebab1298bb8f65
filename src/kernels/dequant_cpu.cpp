// CPU reference of the GPTQ dequantization op (see dequant.h): plain loops over
// kernels::gptq_stream_get and kernels::dequant_value, parallel over rows k only.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/dequant.h"
#include "kernels/dequant_formula.h"

namespace lota::kernels {
namespace {

template <typename T>
void dequant_cpu_typed(const int32_t* qweight, const int32_t* zeros, const c10::Half* scales, const int32_t* g_idx,
                       const float* offset, int64_t K, int64_t N, int bits, T* out) {
    at::parallel_for(0, K, 16, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
            const int64_t g = g_idx[k];
            for (int64_t n = 0; n < N; ++n) {
                const int32_t q = static_cast<int32_t>(gptq_stream_get(qweight + n, N, k, bits));
                const float f = offset ? offset[g * N + n] : 0.0f;
                out[k * N + n] = static_cast<T>(dequant_value(q, zeros[g * N + n], static_cast<float>(scales[g * N + n]), f));
            }
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
