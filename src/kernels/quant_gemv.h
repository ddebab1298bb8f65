// Decode-sized quantized product: y [M, N] = x [M, K] · Wᵀ (+ bias), W[k,n] = S·(Q − Z + F)
// (DESIGN §1) read straight from the packed GPTQ codes, scales, zeros and LoTA offsets — no
// dequantized copy of W is made. Meant for the few rows (1–16) of a decode step, where reading
// the packed weights once is the whole cost. On CUDA: kernels/quant_gemv_cuda.cu; on the CPU:
// kernels/quant_gemv_cpu.cpp for contiguous groups, else the reference (dequant_forward to
// float32, then one float32 GEMM).
#pragma once

#include <initializer_list>

#include <ATen/core/Tensor.h>
#include <c10/core/GradMode.h>

#include "kernels/quant_gemv_cuda.h"  // GemvTuning (plain C++)

namespace lota::kernels {

/// x [M, K] (f32, f16 or bf16); quantized tensors as in dequant_forward; bias [N] of x's dtype
/// or undefined. `group_rows` > 0 promises g_idx[k] == k / group_rows with group_rows a multiple
/// of 32 (see quant_gemv_group_rows); 0 reads g_idx per row (act-order). `tuning` picks the CUDA
/// kernel's plan (the tensor-core kernel for 1–16 rows of bf16/f16 x, 2- or 4-bit codes and
/// contiguous groups unless tuning.tensor_cores is off; see quant_gemv_tc_cuda.cu). Returns
/// y [M, N] of x's dtype, computed in float32 and rounded once. Throws lota::Error on any mismatch.
at::Tensor quant_gemv(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& zeros,
                      const at::Tensor& scales, const at::Tensor& g_idx, const at::Tensor& offset,
                      const at::Tensor& bias, int bits, int64_t group_rows, const GemvTuning& tuning = {});

/// The CPU kernel behind quant_gemv for contiguous groups (group_rows > 0); arguments already
/// validated. Returns y [M, N] in float32, without bias.
at::Tensor quant_gemv_cpu(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& zeros,
                          const at::Tensor& scales, const at::Tensor& offset, int bits, int64_t group_rows);

/// The raw launchers' element type for a float32, float16 or bfloat16 tensor dtype.
inline GemvType gemv_type_of(at::ScalarType t) {
    return t == at::kHalf ? GemvType::F16 : t == at::kBFloat16 ? GemvType::BF16 : GemvType::F32;
}

/// Whether a fused inference kernel (RMSNorm, rope, SwiGLU) takes these tensors: the first on a CUDA
/// device in float32, float16 or bfloat16, the others on its device in its dtype, and no gradient wanted
/// (the kernels have no backward).
inline bool fused_kernel_applies(std::initializer_list<at::Tensor> ts) {
    const at::Tensor& x = *ts.begin();
    const at::ScalarType dt = x.scalar_type();
    if (!x.is_cuda() || !(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16)) return false;
    const bool grad = c10::GradMode::is_enabled();
    for (const at::Tensor& t : ts)
        if (t.device() != x.device() || t.scalar_type() != dt || (grad && t.requires_grad())) return false;
    return true;
}

/// The `group_rows` argument of quant_gemv for this g_idx with G groups: the group length when
/// g_idx[k] == k / g for every k with g a multiple of 32 (or K rounded up to 32 when G == 1),
/// else 0. Reads g_idx (one device sync on CUDA: call it once per layer, not per step).
int64_t quant_gemv_group_rows(const at::Tensor& g_idx, int64_t n_groups);

}  // namespace lota::kernels
