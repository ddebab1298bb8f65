// Peak memory of a device, for progress logs and benchmarks: on CUDA the caching allocator's
// peak of allocated bytes; on CPU the process's peak resident set size.
#pragma once

#include <c10/core/Device.h>

namespace lota::kernels {

/// Peak memory of `device` in MiB: allocator peak on CUDA, peak resident set size on the CPU.
double device_peak_memory_mib(const c10::Device& device);

}  // namespace lota::kernels
