// Validation and device dispatch of the GPTQ dequantization op (see dequant.h).
#include "kernels/dequant.h"

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dequant_cuda.h"
#endif

namespace lota::kernels {
namespace {

void check_arg(const at::Tensor& t, const char* name, at::ScalarType dtype, const std::vector<int64_t>& shape,
               const at::Device& device) {
    LOTA_CHECK(t.defined(), "dequant: tensor '%s' is missing", name);
    LOTA_CHECK(t.sizes().vec() == shape, "dequant: tensor '%s' has shape %s, expected %s", name,
               shape_str(t.sizes().vec()).c_str(), shape_str(shape).c_str());
    LOTA_CHECK(t.scalar_type() == dtype, "dequant: tensor '%s' has dtype %s, expected %s", name,
               c10::toString(t.scalar_type()), c10::toString(dtype));
    LOTA_CHECK(t.device() == device, "dequant: tensor '%s' is on %s, expected %s (the device of qweight)", name,
               t.device().str().c_str(), device.str().c_str());
    LOTA_CHECK(t.is_contiguous(), "dequant: tensor '%s' must be contiguous", name);
}

}  // namespace

void dequant_check_args(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                        const at::Tensor& g_idx, const at::Tensor& offset, int bits) {
    LOTA_CHECK(bits == 2 || bits == 3 || bits == 4 || bits == 8, "dequant: bits = %d, expected 2, 3, 4 or 8", bits);
    LOTA_CHECK(qweight.defined() && qweight.dim() == 2 && g_idx.defined() && g_idx.dim() == 1 && zeros.defined() &&
                   zeros.dim() == 2,
               "dequant: expected qweight [K*b/32, N], zeros [G, N], g_idx [K]");
    const at::Device device = qweight.device();
    const int64_t K = g_idx.size(0), N = qweight.size(1), G = zeros.size(0);
    LOTA_CHECK(K * bits % 32 == 0, "dequant: K = %lld times %d bits is not a multiple of 32", (long long)K, bits);
    check_arg(qweight, "qweight", at::kInt, {K * bits / 32, N}, device);
    check_arg(zeros, "zeros", at::kInt, {G, N}, device);
    check_arg(scales, "scales", at::kHalf, {G, N}, device);
    check_arg(g_idx, "g_idx", at::kInt, {K}, device);
    if (offset.defined()) check_arg(offset, "offset", at::kFloat, {G, N}, device);
}

at::Tensor dequant_forward(const at::Tensor& qweight, const at::Tensor& zeros, const at::Tensor& scales,
                           const at::Tensor& g_idx, const at::Tensor& offset, int bits, at::ScalarType dtype,
                           at::Tensor out) {
    dequant_check_args(qweight, zeros, scales, g_idx, offset, bits);
    LOTA_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
               "dequant: output dtype %s, expected float32, float16 or bfloat16", c10::toString(dtype));
    const at::Device device = qweight.device();
    const int64_t K = g_idx.size(0), N = qweight.size(1), G = zeros.size(0);
    if (out.defined())
        check_arg(out, "out", dtype, {K, N}, device);
    else
        out = at::empty({K, N}, qweight.options().dtype(dtype));
    if (device.is_cpu()) {
        LOTA_CHECK(K == 0 || (g_idx.min().item<int64_t>() >= 0 && g_idx.max().item<int64_t>() < G),
                   "dequant: g_idx values must lie in [0, %lld)", (long long)G);
        dequant_cpu(qweight, zeros, scales, g_idx, offset, bits, out);
        return out;
    }
#ifdef LOTA_WITH_CUDA
    LOTA_CHECK(device.is_cuda(), "dequant: unsupported device %s", device.str().c_str());
    const c10::cuda::OptionalCUDAGuard guard(device);
    const DequantOut type = dtype == at::kFloat ? DequantOut::F32 : dtype == at::kHalf ? DequantOut::F16
                                                                                      : DequantOut::BF16;
    const int err = dequant_cuda_launch(
        qweight.data_ptr<int32_t>(), zeros.data_ptr<int32_t>(), reinterpret_cast<const uint16_t*>(scales.data_ptr()),
        g_idx.data_ptr<int32_t>(), offset.defined() ? offset.data_ptr<float>() : nullptr, K, N, bits, type,
        out.data_ptr(), at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "dequant: CUDA kernel launch failed: %s", dequant_cuda_error_string(err));
    return out;
#else
    LOTA_FAIL("dequant: tensors are on %s, but this build of lota has no CUDA support", device.str().c_str());
#endif
}

}  // namespace lota::kernels
