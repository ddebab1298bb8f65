// Decode-sized dense product on the CPU: y [M, N] = x [M, K] · Wᵀ for float32 x and a float32 or bfloat16
// weight W [N, K] (PyTorch's layout), for the few rows of a decode step. MKL's sgemm copies ("packs") all
// of W into its own layout on every call, which at these sizes costs more than the product itself; this
// kernel reads W once, in place. A bfloat16 W (a bf16 checkpoint run in float32) is widened to float32 as
// it is read: the float32 product of the same values, from half the bytes.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lota::kernels {

/// The largest M dense_gemv_cpu takes with a float32 weight (a decode step of up to this many sequences;
/// past it MKL's packing pays off).
constexpr int64_t kDenseGemvMaxRows = 16;
/// The same for a bfloat16 weight, which MKL would need as a float32 copy on every call.
constexpr int64_t kDenseGemvMaxRowsBf16 = 32;

inline int64_t dense_gemv_max_rows(bool bf16_weight) { return bf16_weight ? kDenseGemvMaxRowsBf16 : kDenseGemvMaxRows; }

/// Whether dense_gemv_cpu applies: x [M, K] float32 and weight [N, K] float32 or bfloat16 on the CPU,
/// both contiguous, M <= dense_gemv_max_rows, and no gradient wanted (the kernel is not differentiable).
/// M >= 2 for a float32 weight: one row stays with MKL's sgemv, which reads W once already (and takes no
/// bfloat16 weight with float32 x).
bool dense_gemv_cpu_applies(const at::Tensor& x, const at::Tensor& weight);

/// y [M, N] float32 = x·weightᵀ, sums in float32 (another order than MKL's). Throws lota::Error
/// unless dense_gemv_cpu_applies.
at::Tensor dense_gemv_cpu(const at::Tensor& x, const at::Tensor& weight);

}  // namespace lota::kernels
