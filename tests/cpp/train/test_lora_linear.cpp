// LoraLinear (adapter/lora_linear.h): B = 0 gives the base output exactly; the formula with α/r;
// gradients reach A and B; dropout masks repeat for the same generator state on the CPU (the CUDA
// generator's test is tests/cpp/cuda/test_train_cuda.cpp).
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

TEST(train_lora_linear, dropout_generator_is_a_seeded_cpu_generator_on_the_cpu) {
    // The trainer's CPU masks must stay those of a CPU generator seeded the same way (resume tests).
    at::Generator gen = lota::adapter::lora_dropout_generator(at::Device(at::kCPU), 12345);
    at::Generator ref = at::make_generator<at::CPUGeneratorImpl>(12345);
    EXPECT_TRUE(gen.device().is_cpu());
    EXPECT_TRUE(at::equal(gen.get_state(), ref.get_state()));
}

}  // namespace
