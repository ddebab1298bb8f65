// Validation and device dispatch of the decode-sized quantized product (see quant_gemv.h).
#include "kernels/quant_gemv.h"

#include <ATen/ATen.h>

#include "kernels/dequant.h"
#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#endif

namespace lota::kernels {

int64_t quant_gemv_group_rows(const at::Tensor& g_idx, int64_t n_groups) {
    const int64_t K = g_idx.size(0);
    if (n_groups == 1) return (K + 31) / 32 * 32 > 0 ? (K + 31) / 32 * 32 : 32;
    if (K % n_groups != 0) return 0;
    const int64_t g = K / n_groups;
    if (g % 32 != 0) return 0;
    const at::Tensor expect = at::arange(K, g_idx.options().dtype(at::kLong)).div(g, "floor");
    return at::equal(g_idx.to(at::kLong), expect) ? g : 0;
}

at::Tensor quant_gemv(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& zeros,
                      const at::Tensor& scales, const at::Tensor& g_idx, const at::Tensor& offset,
                      const at::Tensor& bias, int bits, int64_t group_rows, const GemvTuning& tuning) {
    dequant_check_args(qweight, zeros, scales, g_idx, offset, bits);
    const int64_t K = g_idx.size(0), N = qweight.size(1);
    LOTA_CHECK(x.defined() && x.dim() == 2 && x.size(1) == K, "quant_gemv: x must be [M, %lld], got %s",
               (long long)K, x.defined() ? shape_str(x.sizes().vec()).c_str() : "undefined");
    const at::ScalarType dtype = x.scalar_type();
    LOTA_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
               "quant_gemv: x has dtype %s, expected float32, float16 or bfloat16", c10::toString(dtype));
    LOTA_CHECK(x.device() == qweight.device(), "quant_gemv: x is on %s, the weights on %s", x.device().str().c_str(),
               qweight.device().str().c_str());
    LOTA_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == N && bias.scalar_type() == dtype &&
                                   bias.device() == x.device()),
               "quant_gemv: bias must be [%lld] of x's dtype on x's device", (long long)N);
    LOTA_CHECK(group_rows >= 0 && group_rows % 32 == 0, "quant_gemv: group_rows %lld is not a multiple of 32",
               (long long)group_rows);
    if (x.device().is_cpu()) {
        // The twin is the specification: dequantize in float32, one float32 GEMM, round once.
        const at::Tensor W = dequant_forward(qweight, zeros, scales, g_idx, offset, bits, at::kFloat);
        at::Tensor y = x.to(at::kFloat).matmul(W);
        if (bias.defined()) y = y + bias.to(at::kFloat);
        return y.to(dtype);
    }
#ifdef LOTA_WITH_CUDA
    LOTA_CHECK(x.device().is_cuda(), "quant_gemv: unsupported device %s", x.device().str().c_str());
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    const int64_t M = xc.size(0);
    at::Tensor out = at::empty({M, N}, xc.options());
    if (M == 0 || N == 0) return out;
    if (K == 0) return bias.defined() ? out.copy_(bias.expand({M, N})) : out.zero_();
    GemvArgs a;
    a.x = xc.data_ptr();
    a.x_type = gemv_type_of(dtype);
    a.M = M;
    a.K = K;
    a.N = N;
    a.qweight = qweight.data_ptr<int32_t>();
    a.zeros = zeros.data_ptr<int32_t>();
    a.scales = reinterpret_cast<const uint16_t*>(scales.data_ptr());
    a.g_idx = g_idx.data_ptr<int32_t>();
    a.offset = offset.defined() ? offset.data_ptr<float>() : nullptr;
    a.bits = bits;
    a.group_rows = group_rows;
    a.vector_loads = N % 4 == 0 && reinterpret_cast<uintptr_t>(a.qweight) % 16 == 0;
    a.out_type = a.x_type;
    quant_gemv_cuda_plan(a, tuning);
    const at::Tensor partial = at::empty({a.splits, M, N}, xc.options().dtype(at::kFloat));
    a.partial = partial.data_ptr<float>();
    const at::Tensor b = bias.defined() ? bias.contiguous() : at::Tensor();
    a.bias = b.defined() ? b.data_ptr() : nullptr;
    a.out = out.data_ptr();
    const int err = quant_gemv_cuda_launch(a, at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "quant_gemv: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
    return out;
#else
    (void)tuning;
    LOTA_FAIL("quant_gemv: tensors are on %s, but this build of lota has no CUDA support", x.device().str().c_str());
#endif
}

}  // namespace lota::kernels
