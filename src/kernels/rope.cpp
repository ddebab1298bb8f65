// Validation and device dispatch of the rotary embedding (see rope.h).
#include "kernels/rope.h"

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#include "kernels/quant_gemv.h"
#include "kernels/rope_cuda.h"
#endif

namespace lota::kernels {

at::Tensor rope_rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    LOTA_CHECK(x.defined() && x.dim() == 4 && x.size(-1) % 2 == 0, "rope: x must be [B, H, T, D] with D even, got %s",
               x.defined() ? shape_str(x.sizes().vec()).c_str() : "undefined");
    const auto table_ok = [&](const at::Tensor& c) {
        return c.defined() && c.dim() == 3 && (c.size(0) == x.size(0) || c.size(0) == 1) && c.size(1) == x.size(2) &&
               c.size(2) == x.size(3);
    };
    LOTA_CHECK(table_ok(cos) && table_ok(sin) && cos.sizes() == sin.sizes(),
               "rope: cos and sin must be [%lld or 1, %lld, %lld] for x of shape %s", (long long)x.size(0),
               (long long)x.size(2), (long long)x.size(3), shape_str(x.sizes().vec()).c_str());
#ifdef LOTA_WITH_CUDA
    if (cos.size(0) == x.size(0) && fused_kernel_applies({x, cos, sin})) {
        const c10::cuda::OptionalCUDAGuard guard(x.device());
        const at::Tensor c = cos.contiguous(), s = sin.contiguous();
        at::Tensor out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
        const int64_t strides[4] = {x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
        const int64_t sizes[4] = {x.size(0), x.size(1), x.size(2), x.size(3)};
        const GemvType t = gemv_type_of(x.scalar_type());
        const int err = rope_cuda_launch(x.data_ptr(), strides, c.data_ptr(), s.data_ptr(), out.data_ptr(), sizes, t,
                                         at::cuda::getCurrentCUDAStream().stream());
        LOTA_CHECK(err == 0, "rope: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
        return out;
    }
#endif
    const int64_t half = x.size(-1) / 2;
    const at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    const at::Tensor rotated = at::cat({-x2, x1}, -1);
    const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
    return x * c + rotated * s;
}

}  // namespace lota::kernels
