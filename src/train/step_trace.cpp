// Kineto profile of one training step (step_trace.h).
#include "train/step_trace.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include <torch/csrc/autograd/profiler_kineto.h>

#include "util/check.h"
#include "util/log.h"

namespace lota::train {
namespace {

namespace prof = torch::profiler::impl;

struct KernelTotal {
    int64_t calls = 0;
    uint64_t ns = 0;
};

}  // namespace

void step_trace_begin(bool cuda) {
    std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
    if (cuda) activities.insert(prof::ActivityType::CUDA);
    // With the caching allocator's events (the trace shows where the step's memory peak is) and every op's
    // input shapes (which products take the time).
    const prof::ProfilerConfig config(prof::ProfilerState::KINETO, /*report_input_shapes=*/true,
                                      /*profile_memory=*/true);
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
}

void step_trace_end(const std::string& path, int top) {
    const std::unique_ptr<torch::autograd::profiler::ProfilerResult> result =
        torch::autograd::profiler::disableProfiler();
    std::map<std::string, KernelTotal> by_name;
    uint64_t device_ns = 0;
    for (const auto& e : result->events()) {
        if (e.deviceType() != c10::DeviceType::CUDA) continue;  // host ops and their launches
        KernelTotal& k = by_name[e.name()];
        k.calls += 1;
        k.ns += e.durationNs();
        device_ns += e.durationNs();
    }
    const std::string tmp = path + ".tmp";
    result->save(tmp);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    LOTA_CHECK(!ec, "%s: cannot write the step trace: %s", path.c_str(), ec.message().c_str());
    LOTA_LOG_INFO("wrote the step trace to %s (%zu events)", path.c_str(), result->events().size());
    if (device_ns == 0) return;
    std::vector<std::pair<std::string, KernelTotal>> rows(by_name.begin(), by_name.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
    LOTA_LOG_INFO("device time in the traced step: %.1f ms in %zu kernel names; the top %d:", device_ns * 1e-6,
                  rows.size(), top);
    for (int i = 0; i < top && i < (int)rows.size(); ++i) {
        const auto& [name, k] = rows[i];
        LOTA_LOG_INFO("  %7.1f ms %5.1f%% %6lld× %.110s", k.ns * 1e-6, 100.0 * (double)k.ns / (double)device_ns,
                      (long long)k.calls, name.c_str());
    }
}

}  // namespace lota::train
