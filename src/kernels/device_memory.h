// Peak memory of a device, for progress logs and benchmarks: on CUDA the caching allocator's
// peak of allocated bytes since the last reset; on CPU the process's peak resident set size.
#pragma once

#include <c10/core/Device.h>

namespace lota::kernels {

double device_peak_memory_mib(const c10::Device& device);
/// Starts a new peak window (CUDA only; the CPU peak RSS cannot be reset).
void device_reset_peak_memory(const c10::Device& device);

}  // namespace lota::kernels
