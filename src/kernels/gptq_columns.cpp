// Validation and device dispatch of GPTQ's in-block column solve (see gptq_columns.h).
#include "kernels/gptq_columns.h"

#include <vector>

#include <ATen/ATen.h>

#include "util/check.h"

#ifdef LOTA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/gptq_columns_cuda.h"
#endif

namespace lota::kernels {
namespace {

void check_arg(const at::Tensor& t, const char* name, const std::vector<int64_t>& shape, const at::Device& device) {
    LOTA_CHECK(t.defined(), "gptq_columns: tensor '%s' is missing", name);
    LOTA_CHECK(t.sizes().vec() == shape, "gptq_columns: tensor '%s' has shape %s, expected %s", name,
               shape_str(t.sizes().vec()).c_str(), shape_str(shape).c_str());
    LOTA_CHECK(t.scalar_type() == at::kFloat, "gptq_columns: tensor '%s' has dtype %s, expected float32", name,
               c10::toString(t.scalar_type()));
    LOTA_CHECK(t.device() == device, "gptq_columns: tensor '%s' is on %s, expected %s (the device of W1)", name,
               t.device().str().c_str(), device.str().c_str());
}

// Rows of Q1 or Hinv1: contiguous columns, rows that do not overlap.
void check_rows(const at::Tensor& t, const char* name, int64_t count) {
    LOTA_CHECK(t.stride(1) == 1 && (t.size(0) <= 1 || t.stride(0) >= count),
               "gptq_columns: tensor '%s' needs contiguous columns and rows at least %lld apart, got strides %s",
               name, (long long)count, shape_str(t.strides().vec()).c_str());
}

}  // namespace

void gptq_columns(at::Tensor& W1, const at::Tensor& Q1, at::Tensor& Err1, const at::Tensor& Hinv1,
                  const at::Tensor& scale, const at::Tensor& zero, int maxq, int64_t c0, int64_t c1) {
    LOTA_CHECK(W1.defined() && W1.dim() == 2, "gptq_columns: expected W1 [N, count], got %s",
               W1.defined() ? shape_str(W1.sizes().vec()).c_str() : "an undefined tensor");
    const at::Device device = W1.device();
    const int64_t N = W1.size(0), count = W1.size(1);
    check_arg(W1, "W1", {N, count}, device);
    check_arg(Q1, "Q1", {N, count}, device);
    check_arg(Err1, "Err1", {N, count}, device);
    check_arg(Hinv1, "Hinv1", {count, count}, device);
    check_arg(scale, "scale", {N}, device);
    check_arg(zero, "zero", {N}, device);
    LOTA_CHECK(W1.is_contiguous() && Err1.is_contiguous(), "gptq_columns: W1 and Err1 must be contiguous");
    check_rows(Q1, "Q1", count);
    check_rows(Hinv1, "Hinv1", count);
    LOTA_CHECK(0 <= c0 && c0 <= c1 && c1 <= count, "gptq_columns: columns [%lld, %lld) do not lie in [0, %lld)",
               (long long)c0, (long long)c1, (long long)count);
    LOTA_CHECK(maxq >= 1 && maxq <= 255, "gptq_columns: maxq = %d, expected 1 to 255", maxq);
    if (N == 0 || c0 == c1) return;
    const at::Tensor s = scale.contiguous(), z = zero.contiguous();
    if (device.is_cpu()) {
        gptq_columns_cpu(W1, Q1, Err1, Hinv1, s, z, maxq, c0, c1);
        return;
    }
#ifdef LOTA_WITH_CUDA
    LOTA_CHECK(device.is_cuda(), "gptq_columns: unsupported device %s", device.str().c_str());
    const c10::cuda::OptionalCUDAGuard guard(device);
    // A block's rows and 32 rows of Hinv1, columns [c0, count), are staged in shared memory: the block
    // size is bounded by it.
    const int64_t smem = gptq_columns_cuda_smem_bytes(c0, count);
    const int64_t smem_max = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin);
    LOTA_CHECK(smem <= smem_max,
               "gptq_columns: columns [%lld, %lld) of a %lld-column block need %lld bytes of shared memory, "
               "%s allows %lld per block; use a smaller GPTQ block size",
               (long long)c0, (long long)count, (long long)count, (long long)smem, device.str().c_str(),
               (long long)smem_max);
    const int err = gptq_columns_cuda_launch(W1.data_ptr<float>(), Q1.data_ptr<float>(), Err1.data_ptr<float>(),
                                             Hinv1.data_ptr<float>(), s.data_ptr<float>(), z.data_ptr<float>(), N,
                                             count, Q1.stride(0), Hinv1.stride(0), maxq, c0, c1,
                                             at::cuda::getCurrentCUDAStream().stream());
    LOTA_CHECK(err == 0, "gptq_columns: CUDA kernel launch failed: %s", gptq_columns_cuda_error_string(err));
#else
    LOTA_FAIL("gptq_columns: tensors are on %s, but this build of lota has no CUDA support", device.str().c_str());
#endif
}

}  // namespace lota::kernels
