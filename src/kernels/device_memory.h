// Memory of a device: its peak, for progress logs and benchmarks (on CUDA the caching allocator's
// peak of allocated bytes; on CPU the process's peak resident set size), and what is still free.
#pragma once

#include <cstdint>

#include <c10/core/Device.h>

namespace lota::kernels {

/// Peak memory of `device` in MiB: allocator peak on CUDA, peak resident set size on the CPU.
double device_peak_memory_mib(const c10::Device& device);

/// Bytes a new allocation on `device` can still take: on CUDA free device memory plus what the caching
/// allocator holds unused; on the CPU the kernel's estimate of available memory (MemAvailable of
/// /proc/meminfo). -1 when it cannot be read (no limit this process can see).
int64_t device_free_bytes(const c10::Device& device);

}  // namespace lota::kernels
