// Named per-step statistics (step_stats.h).
#include "train/step_stats.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "util/check.h"

namespace lota::train {

void StepStats::name_claim(const std::string& name) {
    LOTA_ASSERT(std::find(names_.begin(), names_.end(), name) == names_.end(), "statistic '%s' reported twice",
                name.c_str());
    names_.push_back(name);
}

void StepStats::add(const std::string& name, const nlohmann::json& value) {
    name_claim(name);
    host_[name] = value;
}

void StepStats::add_device(const std::string& name, const at::Tensor& value, StatKind kind, double divisor) {
    LOTA_ASSERT(value.defined() && value.numel() == 1, "statistic '%s' must be a one-element tensor", name.c_str());
    name_claim(name);
    device_.push_back({name, value, kind, divisor});
}

void StepStats::append(const StepStats& other) {
    for (const auto& [name, value] : other.host_.items()) add(name, value);
    for (const DeviceValue& d : other.device_) add_device(d.name, d.value, d.kind, d.divisor);
}

nlohmann::json StepStats::read(const at::Device& device) const {
    nlohmann::json out = host_;
    if (device_.empty()) return out;
    std::vector<at::Tensor> values;
    values.reserve(device_.size());
    for (const DeviceValue& d : device_) values.push_back(d.value.reshape({1}).to(device, at::kDouble));
    const at::Tensor host = at::cat(values).cpu();  // the one device-to-host copy
    const double* v = host.data_ptr<double>();
    for (size_t i = 0; i < device_.size(); ++i) {
        const DeviceValue& d = device_[i];
        const double x = d.divisor == 1.0 ? v[i] : v[i] / d.divisor;
        switch (d.kind) {
            case StatKind::REAL: out[d.name] = x; break;
            case StatKind::COUNT: out[d.name] = static_cast<int64_t>(x); break;
            case StatKind::FLAG: out[d.name] = x != 0; break;
        }
    }
    return out;
}

}  // namespace lota::train
