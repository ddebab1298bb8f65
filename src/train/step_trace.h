// A profile of one training step (lota train --trace FILE): PyTorch's Kineto profiler records the
// host ops, the allocator's allocations and frees and, on CUDA, every kernel; the step is written as
// a Chrome trace (chrome://tracing, Perfetto) and the device kernels that took the most time are
// logged, grouped by name.
#pragma once

#include <string>

namespace lota::train {

/// Starts recording host ops, and CUDA kernels when `cuda`. One trace at a time.
void step_trace_begin(bool cuda);

/// Stops, writes the Chrome trace to `path` (through a temporary name) and logs the `top` device
/// kernels by total time with their share of all device time. Throws lota::Error when it cannot write.
void step_trace_end(const std::string& path, int top = 20);

}  // namespace lota::train
