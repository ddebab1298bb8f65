// Device peak memory (see device_memory.h).
#include "kernels/device_memory.h"

#include <sys/resource.h>

#include <fstream>
#include <string>

#ifdef LOTA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace lota::kernels {

double device_peak_memory_mib(const c10::Device& device) {
#ifdef LOTA_WITH_CUDA
    if (device.is_cuda()) {
        const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
        const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
        return (double)stats.allocated_bytes[aggregate].peak / (1024.0 * 1024.0);
    }
#endif
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;  // ru_maxrss is KiB on Linux
}

int64_t device_free_bytes(const c10::Device& device) {
#ifdef LOTA_WITH_CUDA
    if (device.is_cuda()) {
        const int index = device.index() < 0 ? 0 : device.index();
        const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
        size_t free = 0, total = 0;
        if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0;
        const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
        const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
        const int64_t cached_unused = stats.reserved_bytes[aggregate].current - stats.allocated_bytes[aggregate].current;
        return static_cast<int64_t>(free) + (cached_unused > 0 ? cached_unused : 0);
    }
#endif
    (void)device;
    std::ifstream meminfo("/proc/meminfo");  // "MemAvailable:   123456 kB" (not every line has a unit)
    const std::string key = "MemAvailable:";
    for (std::string line; std::getline(meminfo, line);)
        if (line.compare(0, key.size(), key) == 0) return std::stoll(line.substr(key.size())) * 1024;
    return -1;
}

}  // namespace lota::kernels
