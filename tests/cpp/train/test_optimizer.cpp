// The trainer's optimizer interface (train/optimizer.h) and named step statistics
// (train/step_stats.h): each optimizer reports its statistics by name with the values its update
// rule computes (checked against the rule called directly on copies), the state a checkpoint keeps
// restores a run exactly, and a checkpoint whose optimizer state is incomplete or foreign is
// refused with a message naming what is missing.
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "../test_error.h"
#include "train/optimizer.h"
#include "train/step_stats.h"
#include "util/check.h"
#include "util/strfmt.h"

using lota_test::error_of;

namespace {

using namespace lota::train;

std::vector<std::string> keys(const nlohmann::json& j) {
    std::vector<std::string> k;
    for (const auto& item : j.items()) k.push_back(item.key());
    return k;  // nlohmann::json objects iterate in sorted key order
}

at::Generator make_gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

at::Tensor rand_ternary(at::IntArrayRef shape, at::Generator& gen) {
    return at::randint(-1, 2, shape, gen, at::TensorOptions().dtype(at::kChar));
}

TEST(train_step_stats, reads_device_values_by_name_and_kind) {
    StepStats a, b;
    a.add("lr", 0.25);
    a.add_device("sum", at::full({}, 7.0, at::kDouble), StatKind::REAL, 4.0);
    b.add_device("count", at::full({1}, 12.0, at::kFloat), StatKind::COUNT);
    b.add_device("flag", at::zeros({}, at::kDouble), StatKind::FLAG);
    a.append(b);
    const nlohmann::json r = a.read(at::kCPU);
    EXPECT_EQ(keys(r), (std::vector<std::string>{"count", "flag", "lr", "sum"}));
    EXPECT_EQ(r["lr"].get<double>(), 0.25);
    EXPECT_EQ(r["sum"].get<double>(), 7.0 / 4.0);  // divided on the host after the read
    EXPECT_TRUE(r["count"].is_number_integer());
    EXPECT_EQ(r["count"].get<int64_t>(), 12);
    EXPECT_TRUE(r["flag"].is_boolean());
    EXPECT_FALSE(r["flag"].get<bool>());
    StepStats dup;
    dup.add("lr", 1.0);
    EXPECT_ANY_THROW(dup.add_device("lr", at::zeros({}, at::kDouble)));
    EXPECT_ANY_THROW(a.append(b));  // every name of b is taken already
}

TEST(train_optimizer, tsignsgd_reports_its_statistics_by_name) {
    at::Generator gen = make_gen(11);
    const at::Tensor a0 = rand_ternary({4, 300}, gen), b0 = rand_ternary({200, 4}, gen);
    const at::Tensor ga = at::randn({4, 300}, gen), gb = at::randn({200, 4}, gen);
    at::Tensor a = a0.clone(), b = b0.clone(), ga_buf = ga.clone(), gb_buf = gb.clone();
    TSignSgdOptions o;
    TSignSgdOptimizer opt({{a, ga_buf}, {b, gb_buf}}, o);
    EXPECT_EQ(opt.name(), "t-signsgd");
    at::Tensor a_ref = a0.clone(), b_ref = b0.clone();
    // Phase 1 (entries move), then phase 2 with the guard on (|g| of randn: global norm ≈ 44 > 10).
    for (const int64_t t : {2, 9}) {
        SCOPED_TRACE(::testing::Message() << "step " << t << " of 10");
        const nlohmann::json st = opt.step(t, 10).read(at::kCPU);
        EXPECT_EQ(keys(st), (std::vector<std::string>{"grad_norm", "guard_active", "n_changed", "sigma_t"}));
        // The update rule called directly on copies gives the same parameters and statistics.
        const TSignSgdStats ref = tsignsgd_step({{a_ref, ga}, {b_ref, gb}}, t, 10, o);
        EXPECT_TRUE(at::equal(a, a_ref));
        EXPECT_TRUE(at::equal(b, b_ref));
        if (t == 2) {
            EXPECT_GT(ref.n_changed, 0) << "the test needs entries that move";
        }
        EXPECT_EQ(ref.guard_active, t == 9) << "the test needs the phase-2 guard on";
        EXPECT_EQ(st["sigma_t"].get<double>(), ref.sigma_t);
        EXPECT_EQ(st["grad_norm"].get<double>(), ref.grad_norm);
        EXPECT_TRUE(st["n_changed"].is_number_integer());
        EXPECT_EQ(st["n_changed"].get<int64_t>(), ref.n_changed);
        EXPECT_TRUE(st["guard_active"].is_boolean());
        EXPECT_EQ(st["guard_active"].get<bool>(), ref.guard_active);
        EXPECT_EQ(opt.progress_text(st), lota::strfmt("sigma %.4g | grad norm %.4g", ref.sigma_t, ref.grad_norm));
    }

    opt.zero_grad();  // the buffers are shared with the layer: zeroed in place
    EXPECT_EQ(ga_buf.abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(gb_buf.abs().sum().item<float>(), 0.0f);
    EXPECT_TRUE(opt.state_save().tensors.empty());
}

TEST(train_optimizer, adamw_reports_its_statistics_by_name) {
    at::Generator gen = make_gen(12);
    const at::Tensor p0 = at::randn({3, 5}, gen), g = at::randn({3, 5}, gen);
    at::Tensor p = p0.clone().set_requires_grad(true), p_ref = p0.clone().set_requires_grad(true);
    AdamWOptions o;
    o.warmup_ratio = 0.5;
    AdamWOptimizer opt({{"w", p}}, o);
    EXPECT_EQ(opt.name(), "adamw");
    p.mutable_grad() = g.clone();
    const nlohmann::json st = opt.step(1, 4).read(at::kCPU);
    EXPECT_EQ(keys(st), (std::vector<std::string>{"grad_norm", "lr"}));

    AdamWState ref_state;
    p_ref.mutable_grad() = g.clone();
    const double lr = adamw_lr(o, 1, 4), norm = adamw_step({p_ref}, ref_state, o, lr);
    EXPECT_GT(lr, 0.0);
    EXPECT_EQ(st["lr"].get<double>(), lr);
    EXPECT_EQ(st["grad_norm"].get<double>(), norm);
    EXPECT_TRUE(at::equal(p.detach(), p_ref.detach()));
    EXPECT_EQ(opt.progress_text(st), lota::strfmt("lr %.4g | grad norm %.4g", lr, norm));
    opt.zero_grad();
    EXPECT_FALSE(p.grad().defined());
}

// Two steps, save, a third step; a fresh optimizer loaded from the save takes the same third step.
TEST(train_optimizer, adamw_state_round_trip_continues_exactly) {
    at::Generator gen = make_gen(13);
    const at::Tensor a0 = at::randn({2, 6}, gen), b0 = at::randn({6, 2}, gen);
    std::vector<at::Tensor> grads;
    for (int i = 0; i < 6; ++i) grads.push_back(at::randn(i % 2 ? b0.sizes() : a0.sizes(), gen));
    at::Tensor a = a0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
    AdamWOptimizer opt({{"l.lora_A.weight", a}, {"l.lora_B.weight", b}}, AdamWOptions{});
    for (int t = 1; t <= 2; ++t) {
        a.mutable_grad() = grads[2 * (t - 1)];
        b.mutable_grad() = grads[2 * (t - 1) + 1];
        opt.step(t, 3);
        opt.zero_grad();
    }
    const OptimizerState saved = opt.state_save();
    EXPECT_EQ(saved.scalars.at("step").get<int64_t>(), 2);
    std::vector<std::string> names;
    for (const auto& [name, t] : saved.tensors) names.push_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"l.lora_A.weight.m", "l.lora_A.weight.v", "l.lora_B.weight.m",
                                               "l.lora_B.weight.v"}));

    at::Tensor a2 = a.detach().clone().set_requires_grad(true), b2 = b.detach().clone().set_requires_grad(true);
    AdamWOptimizer resumed({{"l.lora_A.weight", a2}, {"l.lora_B.weight", b2}}, AdamWOptions{});
    resumed.state_load(saved, "ckpt");
    a.mutable_grad() = grads[4];
    b.mutable_grad() = grads[5];
    a2.mutable_grad() = grads[4];
    b2.mutable_grad() = grads[5];
    opt.step(3, 3);
    resumed.step(3, 3);
    EXPECT_TRUE(at::equal(a.detach(), a2.detach()));
    EXPECT_TRUE(at::equal(b.detach(), b2.detach()));
}

TEST(train_optimizer, incomplete_or_foreign_state_is_refused) {
    at::Tensor a = at::zeros({2, 6}).set_requires_grad(true), b = at::zeros({6, 2}).set_requires_grad(true);
    AdamWOptimizer opt({{"l.lora_A.weight", a}, {"l.lora_B.weight", b}}, AdamWOptions{});
    OptimizerState full;
    full.scalars["step"] = 3;
    for (const auto& [name, t] : {std::pair<std::string, at::Tensor>{"l.lora_A.weight", a}, {"l.lora_B.weight", b}}) {
        full.tensors[name + ".m"] = at::zeros(t.sizes());
        full.tensors[name + ".v"] = at::zeros(t.sizes());
    }
    EXPECT_EQ(error_of([&] { opt.state_load(full, "ckpt"); }), "");

    OptimizerState missing = full;
    missing.tensors.erase("l.lora_B.weight.v");
    std::string e = error_of([&] { opt.state_load(missing, "out/checkpoint-3"); });
    EXPECT_NE(e.find("out/checkpoint-3: optimizer.safetensors has no 'l.lora_B.weight.v'"), std::string::npos) << e;

    OptimizerState none = full;  // a checkpoint without optimizer.safetensors
    none.tensors.clear();
    e = error_of([&] { opt.state_load(none, "ckpt"); });
    EXPECT_NE(e.find("has no 'l.lora_A.weight.m'"), std::string::npos) << e;

    OptimizerState no_step = full;
    no_step.scalars = nlohmann::json::object();
    e = error_of([&] { opt.state_load(no_step, "ckpt"); });
    EXPECT_NE(e.find("no AdamW step count"), std::string::npos) << e;

    OptimizerState extra = full;
    extra.tensors["l.lora_C.weight.m"] = at::zeros({1});
    e = error_of([&] { opt.state_load(extra, "ckpt"); });
    EXPECT_NE(e.find("holds 'l.lora_C.weight.m'"), std::string::npos) << e;

    OptimizerState wrong_shape = full;
    wrong_shape.tensors["l.lora_A.weight.v"] = at::zeros({6, 2});
    e = error_of([&] { opt.state_load(wrong_shape, "ckpt"); });
    EXPECT_NE(e.find("'l.lora_A.weight.v' is Float [6, 2], expected float32 [2, 6]"), std::string::npos) << e;

    at::Tensor p = at::zeros({4}, at::kChar), g = at::zeros({4});
    TSignSgdOptimizer tsign({{p, g}}, TSignSgdOptions{});
    EXPECT_EQ(error_of([&] { tsign.state_load(OptimizerState{}, "ckpt"); }), "");
    e = error_of([&] { tsign.state_load(full, "ckpt"); });
    EXPECT_NE(e.find("t-SignSGD keeps no state"), std::string::npos) << e;
}

}  // namespace
