// Shared by the CUDA tests of every area (each skips without CUDA): whether this build and
// machine can run them, and a quantized layer moved to a device.
#pragma once

#include <ATen/Context.h>

#include "quant/quantized_weight.h"

namespace lota_cuda_test {

inline bool have_cuda() {
#ifdef LOTA_WITH_CUDA
    return at::hasCUDA();
#else
    return false;
#endif
}

/// Every tensor of `qw` (codes, zeros, scales, g_idx, offset and bias when present) on `device`.
inline lota::quant::QuantizedWeight quantized_on(lota::quant::QuantizedWeight qw, const at::Device& device) {
    qw.qweight = qw.qweight.to(device);
    qw.zeros = qw.zeros.to(device);
    qw.scales = qw.scales.to(device);
    qw.g_idx = qw.g_idx.to(device);
    if (qw.offset.defined()) qw.offset = qw.offset.to(device);
    if (qw.bias.defined()) qw.bias = qw.bias.to(device);
    return qw;
}

}  // namespace lota_cuda_test
