// Device peak memory (see device_memory.h).
#include "kernels/device_memory.h"

#include <sys/resource.h>

#ifdef LOTA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
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

}  // namespace lota::kernels
