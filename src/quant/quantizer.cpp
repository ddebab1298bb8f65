// Grid parameters and round-to-nearest (see quantizer.h). Everything runs in float32 on the
// input's device; a 1-D x is treated as one row.
#include "quant/quantizer.h"

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::quant {
namespace {

// Largest and smallest positive fp16 values: a scale outside them would not survive storage.
constexpr double FP16_MAX = 65504.0;
constexpr double FP16_MIN_SUBNORMAL = 5.960464477539063e-08;

at::Tensor as_column(const at::Tensor& p, const at::Tensor& x) {
    return p.dim() == 1 && x.dim() == 2 ? p.unsqueeze(1) : p;
}

}  // namespace

void check_bits(int bits, const char* what) {
    LOTA_CHECK(bits == 2 || bits == 3 || bits == 4 || bits == 8,
               "%s: bits = %d is not supported, expected 2, 3, 4 or 8", what, bits);
}

GridParams grid_params(const at::Tensor& x_in, int bits, bool sym) {
    check_bits(bits, "grid_params");
    LOTA_CHECK(x_in.dim() == 2 && x_in.size(1) > 0, "grid_params: expected x [N, cols] with cols > 0, got %s",
               shape_str(x_in.sizes().vec()).c_str());
    const at::Tensor x = x_in.to(at::kFloat);
    const double maxq = double((1 << bits) - 1);
    auto [row_min, row_max] = at::aminmax(x, 1);
    at::Tensor xmin = at::clamp_max(row_min, 0.0);
    at::Tensor xmax = at::clamp_min(row_max, 0.0);
    if (sym) {
        // Always centred (GPTQ's reference keeps xmin = 0 for an all-positive row, which clips
        // half the grid away; every row here gets [-max|x|, +max|x|]).
        xmax = at::maximum(xmin.abs(), xmax);
        xmin = -xmax;
    }
    const at::Tensor flat = (xmin == 0) & (xmax == 0);
    xmin = at::where(flat, at::full_like(xmin, -1.0), xmin);
    xmax = at::where(flat, at::full_like(xmax, 1.0), xmax);
    // fp16 rounding first: the codes and the GPTQ error feedback then use the stored grid.
    at::Tensor scale = ((xmax - xmin) / maxq).clamp(FP16_MIN_SUBNORMAL, FP16_MAX).to(at::kHalf).to(at::kFloat);
    at::Tensor zero;
    if (sym)
        zero = at::full_like(scale, double((1 << bits) / 2));
    else
        zero = at::round(-xmin / scale).clamp(0.0, maxq);
    return {scale, zero};
}

namespace {

// round(q) + Z clamped to [0, maxq], in place on q = x / S.
at::Tensor& codes_from_quotient(at::Tensor& q, const at::Tensor& zero, int maxq) {
    q.round_();
    q.add_(as_column(zero, q));
    return q.clamp_(0.0, double(maxq));
}

}  // namespace

at::Tensor quantize_codes(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq) {
    const at::Tensor xf = x.to(at::kFloat);
    // In place after the division: one buffer of x's size, not four.
    at::Tensor q = xf / as_column(scale, xf);
    return codes_from_quotient(q, zero, maxq);
}

at::Tensor& quantize_codes_(at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq) {
    LOTA_CHECK(x.scalar_type() == at::kFloat, "quantize_codes_: expected float32 x, got %s",
               c10::toString(x.scalar_type()));
    x.div_(as_column(scale, x));
    return codes_from_quotient(x, zero, maxq);
}

at::Tensor dequantize_codes(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zero) {
    return as_column(scale, q) * (q - as_column(zero, q));
}

at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int maxq) {
    return dequantize_codes(quantize_codes(x, scale, zero, maxq), scale, zero);
}

}  // namespace lota::quant
