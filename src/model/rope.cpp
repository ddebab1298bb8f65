// RoPE: inverse frequencies (incl. Llama 3.1's piecewise frequency scaling), cos/sin tables and
// the rotate-half application, matching transformers' LlamaRotaryEmbedding in float32.
#include "model/rope.h"

#include <cmath>

#include <ATen/ATen.h>

#include "kernels/rope.h"
#include "model/lean_ops.h"

namespace lota::model {

at::Tensor rope_inv_freq(const io::ModelConfig& c) {
    const int64_t d = c.head_dim;
    // Same op order as HF: base ** (arange(0, d, 2).float() / d), then reciprocal.
    at::Tensor exponents = at::arange(0, d, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / (double)d;
    at::Tensor inv_freq = 1.0 / at::pow(c.rope_theta, exponents);
    if (c.rope_scaling.type != "llama3") return inv_freq;
    const auto& rs = c.rope_scaling;
    const double old_ctx = (double)rs.original_max_position_embeddings;
    const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
    const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
    at::Tensor smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    return at::where(is_medium, smoothed, scaled);
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions,
                                               at::ScalarType dtype) {
    at::Tensor inv = inv_freq.to(positions.device());
    // freqs[b, t, i] = pos[b, t] * inv_freq[i], as HF's (inv_freq @ position_ids) in float32.
    at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv.view({1, 1, -1});
    at::Tensor emb = at::cat({freqs, freqs}, -1);
    return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor rope_apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    // HF's formula; one kernel on CUDA, also in training (model/lean_ops.h)
    if (at::GradMode::is_enabled() && x.requires_grad()) return rope_lean(x, cos, sin);
    return kernels::rope_rotate(x, cos, sin);
}

}  // namespace lota::model
