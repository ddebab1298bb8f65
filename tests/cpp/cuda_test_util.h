// Shared by the gpu-labelled tests (tests/cpp/kernels, tests/cpp/cuda): whether this build and
// machine can run CUDA, memory poisoning for kernel outputs, and a quantized layer on a device.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include "quant/quantized_weight.h"

namespace lota_cuda_test {

/// True when lota was built with its CUDA kernels and a CUDA device is visible.
inline bool have_cuda() {
#ifdef LOTA_WITH_CUDA
    return at::hasCUDA();
#else
    return false;
#endif
}

/// Why have_cuda() is false, for failure messages.
inline const char* cuda_absence_reason() {
#ifdef LOTA_WITH_CUDA
    return "no CUDA device is visible to LibTorch";
#else
    return "this build has no CUDA kernels (nvcc or a CUDA build of LibTorch was not found at configure time)";
#endif
}

/// Fills cached memory of the CUDA caching allocator on `device` with NaN and frees it, so the next
/// allocations (kernel outputs) start as NaN and an element a kernel forgets to write shows up.
/// Both pools are covered: one large block, and 256 KiB blocks for the small-allocation pool.
inline void poison_device_cache(const at::Device& device) {
    const at::TensorOptions f32 = at::TensorOptions().device(device).dtype(at::kFloat);
    std::vector<at::Tensor> blocks{at::full({int64_t(1) << 22}, NAN, f32)};  // 16 MiB
    for (int i = 0; i < 16; ++i) blocks.push_back(at::full({int64_t(1) << 16}, NAN, f32));
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
