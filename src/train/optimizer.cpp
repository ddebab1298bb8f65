// t-SignSGD and AdamW behind the Optimizer interface (optimizer.h).
#include "train/optimizer.h"

#include <cstdlib>
#include <set>

#include <ATen/ATen.h>

#include "util/check.h"
#include "util/json_read.h"
#include "util/strfmt.h"

namespace lota::train {
namespace {

// The shortest decimal that reads back as v (for messages that compare two settings).
std::string real_text(double v) {
    for (int digits = 1; digits < 17; ++digits) {
        const std::string s = strfmt("%.*g", digits, v);
        if (std::strtod(s.c_str(), nullptr) == v) return s;
    }
    return strfmt("%.17g", v);
}

}  // namespace

TSignSgdOptimizer::TSignSgdOptimizer(std::vector<TSignSgdParam> params, TSignSgdOptions options,
                                     std::vector<std::string> names)
    : params_(std::move(params)), options_(options), names_(std::move(names)) {
    (void)tsignsgd_quantile(0, 1, options_);  // checks the options, momentum included
    if (names_.empty())
        for (size_t i = 0; i < params_.size(); ++i) names_.push_back(std::to_string(i));
    LOTA_ASSERT(names_.size() == params_.size(), "t-SignSGD: %zu names for %zu parameters", names_.size(),
                params_.size());
    std::set<std::string> seen;
    for (const std::string& n : names_)
        LOTA_ASSERT(seen.insert(n).second, "t-SignSGD name '%s' given twice", n.c_str());
    if (options_.momentum > 0)
        for (const TSignSgdParam& p : params_) {
            LOTA_CHECK(p.grad.defined() && p.grad.scalar_type() == at::kFloat,
                       "t-SignSGD momentum: gradient buffers must be float32");
            moments_.push_back(at::zeros_like(p.grad));
            ema_params_.push_back({p.param, moments_.back()});
        }
}

StepStats TSignSgdOptimizer::step(int64_t t, int64_t T) {
    const double beta = options_.momentum;
    if (beta > 0)
        for (size_t i = 0; i < params_.size(); ++i) moments_[i].mul_(beta).add_(params_[i].grad, 1.0 - beta);
    const TSignSgdDeviceStats d = tsignsgd_step_async(beta > 0 ? ema_params_ : params_, t, T, options_);
    StepStats s;
    s.add("sigma_t", tsignsgd_quantile(t, T, options_));
    s.add_device("grad_norm", d.grad_norm);
    s.add_device("n_changed", d.n_changed, StatKind::COUNT);
    s.add_device("guard_active", d.guard_active, StatKind::FLAG);
    if (beta > 0) s.add("tsign_momentum", beta);
    return s;
}

void TSignSgdOptimizer::zero_grad() {
    for (const TSignSgdParam& p : params_) p.grad.zero_();
}

std::string TSignSgdOptimizer::progress_text(const nlohmann::json& stats) const {
    return strfmt("sigma %.4g | grad norm %.4g", stats.at("sigma_t").get<double>(),
                  stats.at("grad_norm").get<double>());
}

OptimizerState TSignSgdOptimizer::state_save() const {
    OptimizerState s;
    if (options_.momentum == 0) return s;  // stateless: the paper's rule
    // Copies: later steps update the moving averages in place, the saved state must not follow.
    const at::TensorOptions cpu = at::TensorOptions().device(at::kCPU);
    for (size_t i = 0; i < moments_.size(); ++i)
        s.tensors[names_[i] + ".m"] = moments_[i].to(cpu, /*non_blocking=*/false, /*copy=*/true);
    s.scalars["momentum"] = options_.momentum;
    return s;
}

void TSignSgdOptimizer::state_load(const OptimizerState& state, const std::string& where) {
    const nlohmann::json& sc = state.scalars;
    const bool recorded = sc.is_object() && sc.contains("momentum");
    LOTA_CHECK(!recorded || sc.at("momentum").is_number(), "%s: trainer_state.json: \"optimizer\".\"momentum\" is %s, "
               "expected a number", where.c_str(), sc.at("momentum").dump().c_str());
    const double saved = recorded ? sc.at("momentum").get<double>() : 0.0;
    LOTA_CHECK(saved == options_.momentum,
               "%s: the checkpoint was made with --tsign-momentum %s, this run has %s (the moving average "
               "cannot be carried over to another momentum)",
               where.c_str(), real_text(saved).c_str(), real_text(options_.momentum).c_str());
    if (options_.momentum == 0) {
        LOTA_CHECK(state.tensors.empty(),
                   "%s: the checkpoint holds %zu optimizer tensors (e.g. '%s'), but t-SignSGD keeps no state without "
                   "momentum; expected none (is it a checkpoint of another method?)",
                   where.c_str(), state.tensors.size(),
                   state.tensors.empty() ? "" : state.tensors.begin()->first.c_str());
        return;
    }
    std::vector<at::Tensor> loaded;
    std::set<std::string> used;
    for (size_t i = 0; i < params_.size(); ++i) {
        const std::string key = names_[i] + ".m";
        const auto it = state.tensors.find(key);
        LOTA_CHECK(it != state.tensors.end(),
                   "%s: optimizer.safetensors has no '%s' (the t-SignSGD moving average of '%s'); the run cannot be "
                   "resumed exactly without it",
                   where.c_str(), key.c_str(), names_[i].c_str());
        const at::Tensor& t = it->second;
        LOTA_CHECK(t.scalar_type() == at::kFloat && t.sizes() == params_[i].grad.sizes(),
                   "%s: optimizer tensor '%s' is %s %s, expected float32 %s", where.c_str(), key.c_str(),
                   c10::toString(t.scalar_type()), shape_str(t.sizes().vec()).c_str(),
                   shape_str(params_[i].grad.sizes().vec()).c_str());
        loaded.push_back(t);
        used.insert(key);
    }
    for (const auto& entry : state.tensors)
        LOTA_CHECK(used.count(entry.first),
                   "%s: optimizer.safetensors holds '%s', which is not t-SignSGD state of this run (%zu adapter "
                   "tensors)",
                   where.c_str(), entry.first.c_str(), params_.size());
    // In place: ema_params_ holds these tensors by handle.
    for (size_t i = 0; i < loaded.size(); ++i) moments_[i].copy_(loaded[i]);
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
    AdamWState loaded;
    loaded.step = has_step ? json_int(sc.at("step"), where + ": the AdamW step count") : -1;
    LOTA_CHECK(loaded.step >= 0,
               "%s: trainer_state.json has no AdamW step count (expected \"optimizer\": {\"step\": N >= 0}, got %s); "
               "the run cannot be resumed exactly without it",
               where.c_str(), sc.dump().c_str());
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
