// Named per-step training statistics, the records of train_log.jsonl. Values the host already
// knows are kept as they are; values still on the device (one-element tensors) stay there until
// StepStats::read copies all of them back with one transfer, so a step that runs without host
// syncs (LoTA-QAF's) has exactly one, at its end. Not here: writing the log (train_log.h).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace lota::train {

/// How a device value is written once read back (as float64).
enum class StatKind {
    REAL,   ///< a number
    COUNT,  ///< an integer count (a JSON integer)
    FLAG,   ///< true when non-zero (a JSON bool)
};

class StepStats {
  public:
    /// A value known on the host. Throws (internal error) when `name` is already taken.
    void add(const std::string& name, const nlohmann::json& value);
    /// A one-element tensor on any device, read back as float64 by read(). `divisor` divides the
    /// value after the read, on the host (a mean from a device sum: the same value on every device).
    void add_device(const std::string& name, const at::Tensor& value, StatKind kind = StatKind::REAL,
                    double divisor = 1.0);
    /// Adds every value of `other` (names must not repeat).
    void append(const StepStats& other);
    /// All values by name. The device values are gathered on `device` and copied to the host at once
    /// (one sync); none when there are no device values.
    nlohmann::json read(const at::Device& device) const;

  private:
    struct DeviceValue {
        std::string name;
        at::Tensor value;
        StatKind kind;
        double divisor;
    };
    void name_claim(const std::string& name);
    std::vector<std::string> names_;
    nlohmann::json host_ = nlohmann::json::object();
    std::vector<DeviceValue> device_;
};

}  // namespace lota::train
