// Validation and device dispatch of RMSNorm (see rms_norm.h).
#include "kernels/rms_norm.h"

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/quant_gemv.h"
#include "kernels/rms_norm_cuda.h"
#endif

namespace lota::kernels {
namespace {

void check_weight(const at::Tensor& x, const at::Tensor& w, const char* what) {
    LOTA_CHECK(x.defined() && w.defined() && x.dim() >= 1 && w.dim() == 1 && w.size(0) == x.size(-1),
               "%s: weight must be [%lld] for x of shape %s", what, (long long)(x.defined() ? x.size(-1) : -1),
               x.defined() ? shape_str(x.sizes().vec()).c_str() : "undefined");
}

#ifdef LOTA_WITH_CUDA
// out = rms_norm(x (+ residual)), and sum = x + residual when there is one (contiguous, allocated here).
at::Tensor launch_fused(const at::Tensor& x, const at::Tensor* residual, at::Tensor* sum, const at::Tensor& w,
                        double eps, const char* what) {
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous(), wc = w.contiguous();
    const at::Tensor rc = residual ? residual->contiguous() : at::Tensor();
    if (sum) *sum = at::empty_like(xc);
    at::Tensor out = at::empty_like(xc);
    const int64_t H = x.size(-1);
    const int err = rms_norm_cuda_launch(xc.data_ptr(), residual ? rc.data_ptr() : nullptr,
                                         sum ? sum->data_ptr() : nullptr, wc.data_ptr(), out.data_ptr(),
                                         H > 0 ? xc.numel() / H : 0, H, static_cast<float>(eps),
                                         gemv_type_of(x.scalar_type()), at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "%s: CUDA kernel launch failed: %s", what, dequant_cuda_error_string(err));
    return out;
}
#endif

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
    check_weight(x, w, "rms_norm");
#ifdef LOTA_WITH_CUDA
    if (fused_kernel_applies({x, w})) return launch_fused(x, nullptr, nullptr, w, eps, "rms_norm");
#endif
    // HF LlamaRMSNorm: normalise in float32, cast back, then scale by the weight.
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor var = xf.pow(2).mean(-1, true);
    const at::Tensor y = (xf * at::rsqrt(var + eps)).to(x.scalar_type());
    return w * y;
}

std::pair<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& w,
                                               double eps) {
    check_weight(x, w, "add_rms_norm");
    LOTA_CHECK(residual.defined() && residual.sizes() == x.sizes() && residual.scalar_type() == x.scalar_type() &&
                   residual.device() == x.device(),
               "add_rms_norm: residual must match x (%s %s), got %s",
               shape_str(x.sizes().vec()).c_str(), c10::toString(x.scalar_type()),
               residual.defined() ? shape_str(residual.sizes().vec()).c_str() : "undefined");
#ifdef LOTA_WITH_CUDA
    if (fused_kernel_applies({x, w, residual})) {
        at::Tensor sum;
        at::Tensor out = launch_fused(x, &residual, &sum, w, eps, "add_rms_norm");
        return {sum.view(x.sizes()), out.view(x.sizes())};
    }
#endif
    at::Tensor sum = x + residual;
    return {sum, rms_norm(sum, w, eps)};
}

at::Tensor rms_norm_backward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& grad, double eps) {
    LOTA_CHECK(x.defined() && w.defined() && grad.defined() && x.dim() >= 1 && w.dim() == 1 &&
                   w.size(0) == x.size(-1) && grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type() &&
                   w.scalar_type() == x.scalar_type(),
               "rms_norm_backward: expected x, grad of one shape and dtype and w [%lld] of that dtype, got %s, %s, %s",
               (long long)(x.defined() ? x.size(-1) : -1),
               x.defined() ? shape_str(x.sizes().vec()).c_str() : "undefined",
               grad.defined() ? shape_str(grad.sizes().vec()).c_str() : "undefined",
               w.defined() ? shape_str(w.sizes().vec()).c_str() : "undefined");
#ifdef LOTA_WITH_CUDA
    const at::ScalarType dt = x.scalar_type();
    if (x.is_cuda() && w.device() == x.device() && grad.device() == x.device() &&
        (dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16)) {
        const c10::cuda::OptionalCUDAGuard guard(x.device());
        const at::Tensor xc = x.contiguous(), wc = w.contiguous(), gc = grad.contiguous();
        at::Tensor dx = at::empty_like(xc);
        const int64_t H = x.size(-1);
        const int err = rms_norm_backward_cuda_launch(xc.data_ptr(), wc.data_ptr(), gc.data_ptr(), dx.data_ptr(),
                                                      H > 0 ? xc.numel() / H : 0, H, static_cast<float>(eps),
                                                      gemv_type_of(dt), at::cuda::getCurrentCUDAStream().stream());
        LOTA_CHECK(err == 0, "rms_norm_backward: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
        return dx;
    }
#endif
    const at::Tensor u = (grad * w).to(at::kFloat);  // as autograd of w·y: the product in x's dtype
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor r = at::rsqrt(xf.pow(2).mean(-1, true) + eps);
    return ((u - xf * (r * r * (u * xf).mean(-1, true))) * r).to(x.scalar_type());
}

}  // namespace lota::kernels
