// Validation and device dispatch of the SwiGLU product (see silu_mul.h).
#include "kernels/silu_mul.h"

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/quant_gemv.h"
#include "kernels/silu_mul_cuda.h"
#endif

namespace lota::kernels {
namespace {

#ifdef LOTA_WITH_CUDA
// The distance between consecutive rows of t's last dimension when every row is that far from the last
// (a contiguous tensor, or a column slice of one such as the halves of gate/up's output), else -1.
int64_t uniform_row_stride(const at::Tensor& t) {
    if (t.stride(-1) != 1) return -1;
    if (t.dim() == 1) return t.size(0);
    for (int64_t d = 0; d + 2 < t.dim(); ++d)
        if (t.size(d) > 1 && t.stride(d) != t.size(d + 1) * t.stride(d + 1)) return -1;
    return t.stride(-2);
}
#endif

}  // namespace

at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up) {
    LOTA_CHECK(gate.defined() && up.defined() && gate.sizes() == up.sizes() && gate.dim() >= 1 &&
                   gate.scalar_type() == up.scalar_type() && gate.device() == up.device(),
               "silu_mul: gate and up must have one shape, dtype and device, got %s and %s",
               gate.defined() ? shape_str(gate.sizes().vec()).c_str() : "(undefined)",
               up.defined() ? shape_str(up.sizes().vec()).c_str() : "(undefined)");
#ifdef LOTA_WITH_CUDA
    if (fused_kernel_applies({gate, up})) {
        const c10::cuda::OptionalCUDAGuard guard(gate.device());
        int64_t ld = uniform_row_stride(gate);
        at::Tensor g = gate, u = up;
        if (ld < 0 || uniform_row_stride(up) != ld) {
            g = gate.contiguous();
            u = up.contiguous();
            ld = gate.size(-1);
        }
        at::Tensor out = at::empty(gate.sizes(), gate.options().memory_format(at::MemoryFormat::Contiguous));
        const int64_t n = gate.size(-1);
        const int err = silu_mul_cuda_launch(g.data_ptr(), u.data_ptr(), ld, out.data_ptr(), n > 0 ? out.numel() / n : 0,
                                             n, gemv_type_of(gate.scalar_type()), at::cuda::getCurrentCUDAStream().stream());
        LOTA_CHECK(err == 0, "silu_mul: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
        return out;
    }
#endif
    return at::silu(gate) * up;
}

}  // namespace lota::kernels
