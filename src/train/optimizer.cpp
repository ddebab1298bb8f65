// t-SignSGD and AdamW behind the Optimizer interface (optimizer.h).
#include "train/optimizer.h"

#include <set>

#include <ATen/ATen.h>

#include "util/check.h"
#include "util/strfmt.h"

namespace lota::train {

TSignSgdOptimizer::TSignSgdOptimizer(std::vector<TSignSgdParam> params, TSignSgdOptions options)
    : params_(std::move(params)), options_(options) {}

StepStats TSignSgdOptimizer::step(int64_t t, int64_t T) {
    const TSignSgdDeviceStats d = tsignsgd_step_async(params_, t, T, options_);
    StepStats s;
    s.add("sigma_t", tsignsgd_quantile(t, T, options_));
    s.add_device("grad_norm", d.grad_norm);
    s.add_device("n_changed", d.n_changed, StatKind::COUNT);
    s.add_device("guard_active", d.guard_active, StatKind::FLAG);
    return s;
}

void TSignSgdOptimizer::zero_grad() {
    for (const TSignSgdParam& p : params_) p.grad.zero_();
}

std::string TSignSgdOptimizer::progress_text(const nlohmann::json& stats) const {
    return strfmt("sigma %.4g | grad norm %.4g", stats.at("sigma_t").get<double>(),
                  stats.at("grad_norm").get<double>());
}

void TSignSgdOptimizer::state_load(const OptimizerState& state, const std::string& where) {
    LOTA_CHECK(state.tensors.empty(),
               "%s: the checkpoint holds %zu optimizer tensors (e.g. '%s'), but t-SignSGD keeps no state; expected "
               "none (is it a checkpoint of another method?)",
               where.c_str(), state.tensors.size(), state.tensors.empty() ? "" : state.tensors.begin()->first.c_str());
}

AdamWOptimizer::AdamWOptimizer(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options)
    : options_(std::move(options)) {
    std::set<std::string> seen;
    for (auto& [name, p] : params) {
        LOTA_ASSERT(seen.insert(name).second, "AdamW parameter '%s' given twice", name.c_str());
        names_.push_back(name);
        params_.push_back(p);
    }
}

StepStats AdamWOptimizer::step(int64_t t, int64_t T) {
    const double lr = adamw_lr(options_, t, T);
    const double norm = adamw_step(params_, state_, options_, lr);
    StepStats s;
    s.add("lr", lr);
    s.add("grad_norm", norm);
    return s;
}

void AdamWOptimizer::zero_grad() {
    for (const at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

std::string AdamWOptimizer::progress_text(const nlohmann::json& stats) const {
    return strfmt("lr %.4g | grad norm %.4g", stats.at("lr").get<double>(), stats.at("grad_norm").get<double>());
}

OptimizerState AdamWOptimizer::state_save() const {
    OptimizerState s;
    // The moments exist once a step ran (adamw_step creates them). Copies: later steps update the
    // moments in place, the saved state must not follow.
    const at::TensorOptions cpu = at::TensorOptions().device(at::kCPU);
    for (size_t i = 0; i < state_.m.size(); ++i) {
        s.tensors[names_[i] + ".m"] = state_.m[i].to(cpu, /*non_blocking=*/false, /*copy=*/true);
        s.tensors[names_[i] + ".v"] = state_.v[i].to(cpu, /*non_blocking=*/false, /*copy=*/true);
    }
    s.scalars["step"] = state_.step;
    return s;
}

void AdamWOptimizer::state_load(const OptimizerState& state, const std::string& where) {
    const nlohmann::json& sc = state.scalars;
    const bool has_step = sc.is_object() && sc.contains("step") && sc.at("step").is_number_integer();
    LOTA_CHECK(has_step && sc.at("step").get<int64_t>() >= 0,
               "%s: trainer_state.json has no AdamW step count (expected \"optimizer\": {\"step\": N >= 0}, got %s); "
               "the run cannot be resumed exactly without it",
               where.c_str(), sc.dump().c_str());
    AdamWState loaded;
    loaded.step = sc.at("step").get<int64_t>();
    std::set<std::string> used;
    for (size_t i = 0; i < params_.size() && loaded.step > 0; ++i)
        for (const char* moment : {"m", "v"}) {
            const std::string key = names_[i] + "." + moment;
            const auto it = state.tensors.find(key);
            LOTA_CHECK(it != state.tensors.end(),
                       "%s: optimizer.safetensors has no '%s' (AdamW's %s of '%s' after %lld steps); the run cannot be "
                       "resumed exactly without it",
                       where.c_str(), key.c_str(), moment, names_[i].c_str(), (long long)loaded.step);
            const at::Tensor& t = it->second;
            LOTA_CHECK(t.scalar_type() == at::kFloat && t.sizes() == params_[i].sizes(),
                       "%s: optimizer tensor '%s' is %s %s, expected float32 %s", where.c_str(), key.c_str(),
                       c10::toString(t.scalar_type()), shape_str(t.sizes().vec()).c_str(),
                       shape_str(params_[i].sizes().vec()).c_str());
            // A copy: the moments are updated in place and `state` stays the caller's.
            const at::TensorOptions dev = at::TensorOptions().device(params_[i].device());
            (moment[0] == 'm' ? loaded.m : loaded.v).push_back(t.to(dev, /*non_blocking=*/false, /*copy=*/true));
            used.insert(key);
        }
    for (const auto& entry : state.tensors)
        LOTA_CHECK(used.count(entry.first),
                   "%s: optimizer.safetensors holds '%s', which is not AdamW state of this run (%zu LoRA tensors, "
                   "%lld steps)",
                   where.c_str(), entry.first.c_str(), params_.size(), (long long)loaded.step);
    state_ = std::move(loaded);
}

}  // namespace lota::train
