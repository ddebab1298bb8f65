// CPU reference of GPTQ's in-block column solve (see gptq_columns.h). Each row's columns depend
// only on that row, so rows run in parallel, and a row runs the per-column ATen formulation as scalar
// float32 operations in the same order and roundings (round half to even; the product e·h rounded
// before the subtraction, no fused multiply-add: this file is compiled for baseline x86-64), hence
// the same codes, where the ATen ops cost ~10 µs each per column and dominated GPTQ on the CPU.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/gptq_columns.h"

namespace lota::kernels {

void gptq_columns_cpu(at::Tensor& W1, const at::Tensor& Q1, at::Tensor& Err1, const at::Tensor& Hinv1,
                      const at::Tensor& scale, const at::Tensor& zero, int maxq, int64_t c0, int64_t c1) {
    const int64_t N = W1.size(0), count = W1.size(1);
    float* w = W1.data_ptr<float>();
    float* q = Q1.data_ptr<float>();
    float* err = Err1.data_ptr<float>();
    const float* h = Hinv1.data_ptr<float>();
    const int64_t ldq = Q1.stride(0), ldh = Hinv1.stride(0);
    const float* s_row = scale.data_ptr<float>();
    const float* z_row = zero.data_ptr<float>();
    const float fmaxq = static_cast<float>(maxq);
    at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
            float* wr = w + n * count;
            const float s = s_row[n], z = z_row[n];
            for (int64_t i = c0; i < c1; ++i) {
                const float code = std::min(std::max(std::nearbyint(wr[i] / s) + z, 0.0f), fmaxq);
                q[n * ldq + i] = code;
                const float deq = s * (code - z);
                const float e = (wr[i] - deq) / h[i * ldh + i];
                err[n * count + i] = e;
                const float* hr = h + i * ldh;
                for (int64_t j = i; j < count; ++j) {
                    const float prod = e * hr[j];
                    wr[j] = wr[j] - prod;
                }
            }
        }
    });
}

}  // namespace lota::kernels
