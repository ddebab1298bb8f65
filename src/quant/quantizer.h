// The one quantize/dequantize formula of lota (DESIGN §1, GPTQ's quant.py semantics): per-row
// grid parameters from min/max and round-to-nearest onto the grid. RTN, GPTQ and packing all go
// through these functions. Scales are rounded to fp16 here, so the grid used while quantizing is
// exactly the grid stored in the checkpoint. No error feedback here (that is gptq.h).
#pragma once

#include <ATen/core/Tensor.h>

namespace lota::quant {

/// Grid of one group for every output row: scale S and zero point Z, both float32 [N].
struct GridParams {
    at::Tensor scale;  ///< float32 [N], values exactly representable in fp16, > 0
    at::Tensor zero;   ///< float32 [N], integers in [0, maxq]
};

/// Parameters from x [N, cols] (one group's columns): the range is widened to include 0
/// (xmin = min(min x, 0), xmax = max(max x, 0)); an all-zero row gets [-1, +1] as in GPTQ's
/// reference. Asymmetric: S = (xmax − xmin)/maxq, Z = clamp(round(−xmin/S), 0, maxq).
/// Symmetric: xmax = max|x|, xmin = −xmax (always), Z = (maxq + 1)/2. S is rounded to fp16.
GridParams grid_params(const at::Tensor& x, int bits, bool sym);

/// Codes Q = clamp(round(x/S) + Z, 0, maxq) (round half to even); x [N, c], S and Z [N] or [N, c].
/// Returns float32 holding integers.
at::Tensor quantize_codes(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq);

/// quantize_codes in place: float32 x becomes its codes (the same values, no buffer of x's size).
at::Tensor& quantize_codes_(at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq);

/// S·(Q − Z): the dequantized value of codes on the grid (float32). Same op order as
/// kernels::dequant_value without offset.
at::Tensor dequantize_codes(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zero);

/// quantize(x, S, Z, maxq) = S·(clamp(round(x/S) + Z, 0, maxq) − Z): x rounded onto the grid.
at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq);

/// Throws unless bits ∈ {2, 3, 4, 8}; `what` names the caller's context.
void check_bits(int bits, const char* what);

}  // namespace lota::quant
