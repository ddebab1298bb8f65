// LoraLinear (adapter/lora_linear.h): B = 0 gives the base output exactly; the formula with α/r;
// gradients reach A and B; dropout masks repeat for the same generator state on the CPU (the CUDA
// generator's test is tests/cpp/cuda/test_train_cuda.cpp); with dropout, output and gradients equal
// autograd through the inverted-dropout formula with the same mask.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "adapter/lora_linear.h"

namespace {

TEST(train_lora_linear, formula_and_gradients) {
    at::manual_seed(1);
    const at::Tensor w = at::randn({6, 8}), x = at::randn({3, 8});
    auto base = std::make_shared<lota::model::DenseLinear>(w);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
    lota::adapter::LoraLinear zero(base, lota::adapter::lora_init_a(4, 8, gen), at::zeros({6, 4}), 2.0, 0.0);
    EXPECT_TRUE(at::equal(zero.forward(x), base->forward(x)));  // B = 0: exactly the base layer
    const at::Tensor a = at::randn({4, 8}), b = at::randn({6, 4});
    lota::adapter::LoraLinear l(base, a, b, 0.5, 0.0);
    const at::Tensor y = l.forward(x);
    EXPECT_TRUE(at::allclose(y, base->forward(x) + 0.5 * x.matmul(a.t()).matmul(b.t()), 1e-5, 1e-6));
    y.sum().backward();
    ASSERT_TRUE(l.lora_a().grad().defined());
    ASSERT_TRUE(l.lora_b().grad().defined());
    // d/dB sum(0.5·x·Aᵀ·Bᵀ) = 0.5 · 1ᵀ(x·Aᵀ) per output row.
    const at::Tensor gb = 0.5 * x.matmul(a.t()).sum(0).unsqueeze(0).expand({6, 4});
    EXPECT_TRUE(at::allclose(l.lora_b().grad(), gb, 1e-5, 1e-6));
}

TEST(train_lora_linear, dropout_repeats_with_the_generator_state) {
    at::manual_seed(2);
    auto base = std::make_shared<lota::model::DenseLinear>(at::randn({5, 8}));
    lota::adapter::LoraLinear l(base, at::randn({2, 8}), at::randn({5, 2}), 1.0, 0.5);
    const at::Tensor x = at::randn({4, 8});
    EXPECT_TRUE(at::equal(l.forward(x), l.forward(x)));  // no generator: no dropout
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(9);
    l.set_generator(gen);
    const at::Tensor state = gen.get_state();
    const at::Tensor y1 = l.forward(x);
    const at::Tensor y2 = l.forward(x);
    EXPECT_FALSE(at::equal(y1, y2));
    gen.set_state(state);
    EXPECT_TRUE(at::equal(l.forward(x), y1));
}

TEST(train_lora_linear, dropout_matches_autograd_of_the_formula) {
    at::manual_seed(4);
    const double p = 0.3, scaling = 0.75;
    auto base = std::make_shared<lota::model::DenseLinear>(at::randn({5, 8}));
    const at::Tensor a = at::randn({3, 8}), b = at::randn({5, 3}), x0 = at::randn({2, 4, 8}), gy = at::randn({2, 4, 5});
    lota::adapter::LoraLinear l(base, a, b, scaling, p);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
    l.set_generator(gen);
    const at::Tensor state = gen.get_state();
    const at::Tensor x = x0.clone().set_requires_grad(true);
    l.forward(x).backward(gy);
    // The reference: the mask drawn from the same generator state as x's dtype, x·mask/(1 − p) by autograd.
    gen.set_state(state);
    const at::Tensor keep = at::empty(x0.sizes()).bernoulli_(1.0 - p, gen);
    ASSERT_GT(keep.sum().item<double>(), 0);
    ASSERT_LT(keep.sum().item<double>(), (double)keep.numel());  // some of both
    const at::Tensor xr = x0.clone().set_requires_grad(true), ar = a.clone().set_requires_grad(true),
                     br = b.clone().set_requires_grad(true);
    const at::Tensor yr = base->forward(xr) + scaling * (xr * keep / (1.0 - p)).matmul(ar.t()).matmul(br.t());
    yr.backward(gy);
    EXPECT_TRUE(at::allclose(x.grad(), xr.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(l.lora_a().grad(), ar.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(l.lora_b().grad(), br.grad(), 1e-5, 1e-5));
    gen.set_state(state);
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::allclose(l.forward(x0), yr, 1e-5, 1e-5));
}

TEST(train_lora_linear, dropout_generator_is_a_seeded_cpu_generator_on_the_cpu) {
    // The trainer's CPU masks must stay those of a CPU generator seeded the same way (resume tests).
    at::Generator gen = lota::adapter::lora_dropout_generator(at::Device(at::kCPU), 12345);
    at::Generator ref = at::make_generator<at::CPUGeneratorImpl>(12345);
    EXPECT_TRUE(gen.device().is_cpu());
    EXPECT_TRUE(at::equal(gen.get_state(), ref.get_state()));
}

}  // namespace
