// GPTQ on CUDA. The column solve (kernels/gptq_columns.h) bit for bit: the CUDA kernel against the
// per-column ATen formulation it replaces (TF32 off: a k=1 product is then e·h rounded once) and
// against its CPU twin, over segments of 32 and 64 columns of 128-, 96- and 512-column blocks (the
// last past the default 48 KB of shared memory), with outputs poisoned first.
// The whole of GPTQ (quant/gptq.h) with its Hessian and updates on CUDA against the same run on the
// CPU: both float32 with TF32 off, so they differ only in GEMM and Cholesky summation order, which can
// flip a code near a rounding tie (and the act-order of near-equal diagonal entries) and, through the
// error feedback, the codes after it. So: equal Hessians to float32 accuracy, relative output errors
// within 5% of each other, and the CUDA run clearly better than RTN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include "kernels/gptq_columns.h"
#include "quant/gptq.h"
#include "quant/quantized_weight.h"
#include "quant/quantizer.h"
#include "quant/rtn.h"
#include "quant/tf32_guard.h"
#include "util/check.h"

using namespace lota;

namespace {

// A block of columns and where its first segment starts (c0 > 0: earlier columns already solved).
struct ColumnsCase {
    int64_t count, c0;
};
const ColumnsCase COLUMNS_CASES[] = {{128, 0}, {96, 16}, {512, 0}};
constexpr int64_t COLUMNS_N = 300;  // not a multiple of the kernel's 32 rows
constexpr int64_t HINV_PAD = 16, Q_PAD = 24;

// The segments [a, b) of [c0, count) that share one grid of g columns, as GPTQ walks them.
std::vector<std::pair<int64_t, int64_t>> column_segments(int64_t c0, int64_t count, int64_t g) {
    std::vector<std::pair<int64_t, int64_t>> segs;
    for (int64_t a = c0; a < count;) {
        const int64_t b = std::min(count, (a / g + 1) * g);
        segs.emplace_back(a, b);
        a = b;
    }
    return segs;
}

// Upper Cholesky factor of the inverse of a random SPD matrix (positive diagonal, like GPTQ's Hinv),
// HINV_PAD rows and columns larger than the block: Hinv1 is then a view with a row stride, as in GPTQ.
at::Tensor random_hinv_full(int64_t count) {
    const int64_t K = count + HINV_PAD;
    const at::Tensor A = at::randn({K, K}, at::kDouble);
    const at::Tensor H = A.matmul(A.t()) / double(K) + 0.1 * at::eye(K, at::kDouble);
    const at::Tensor U = at::linalg_cholesky(at::cholesky_inverse(at::linalg_cholesky(H)), /*upper=*/true);
    return U.to(at::kFloat).contiguous();  // LAPACK returns it column-major
}

at::Tensor hinv_block(const at::Tensor& full, int64_t count) {
    return full.slice(0, HINV_PAD, HINV_PAD + count).slice(1, HINV_PAD, HINV_PAD + count);
}

// Q1 as GPTQ passes it: NaN-filled columns of a wider codes matrix.
at::Tensor poisoned_codes(int64_t N, int64_t count, const at::Device& device) {
    const at::Tensor Q = at::full({N, count + Q_PAD}, NAN, at::TensorOptions().dtype(at::kFloat).device(device));
    return Q.slice(1, Q_PAD / 2, Q_PAD / 2 + count);
}

// The per-column ATen formulation of the column solve, columns [c0, c1) with one grid.
void columns_aten(at::Tensor& W1, at::Tensor& Q1, at::Tensor& Err1, const at::Tensor& Hinv1,
                  const quant::GridParams& p, int maxq, int64_t c0, int64_t c1) {
    for (int64_t i = c0; i < c1; ++i) {
        const at::Tensor w = W1.select(1, i);
        at::Tensor q = Q1.select(1, i);
        q.copy_(quant::quantize_codes(w, p.scale, p.zero, maxq));
        at::Tensor err = Err1.select(1, i);
        at::div_out(err, w - quant::dequantize_codes(q, p.scale, p.zero), Hinv1[i][i]);
        W1.slice(1, i).sub_(err.unsqueeze(1).matmul(Hinv1.select(0, i).slice(0, i).unsqueeze(0)));
    }
}

// at::equal on the CPU, with how many elements differ and by how much on failure.
::testing::AssertionResult all_equal(const at::Tensor& got, const at::Tensor& ref) {
    const at::Tensor a = got.cpu(), b = ref.cpu();
    if (at::equal(a, b)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << a.ne(b).sum().item<int64_t>() << " of " << a.numel()
                                         << " elements differ, max |diff| " << (a - b).abs().max().item<double>();
}

std::string columns_what(const ColumnsCase& c, int bits, bool sym, int64_t g) {
    return "count " + std::to_string(c.count) + " c0 " + std::to_string(c.c0) + " bits " + std::to_string(bits) +
           (sym ? " sym" : " asym") + " segments of " + std::to_string(g);
}

// Every column case (blocks, 3 and 4 bits, asym and sym, segments of 32 and 64) through the CUDA kernel and
// through `reference(W1, Q1, Err1, Hinv1, grid, maxq, a, b)` on `ref_device`, from the same inputs (the grid
// from the reference's weights, as GPTQ computes it between segments); codes, errors and weights must be
// equal bit for bit. Returns the number of cases.
template <class Reference>
int expect_kernel_equals(const at::Device& ref_device, Reference reference) {
    const at::Device cuda(at::kCUDA);
    int runs = 0;
    for (const ColumnsCase& c : COLUMNS_CASES)
        for (const int bits : {3, 4})
            for (const bool sym : {false, true})
                for (const int64_t g : {int64_t(32), int64_t(64)}) {
                    const std::string what = columns_what(c, bits, sym, g);
                    const int maxq = (1 << bits) - 1;
                    const at::Tensor W0 = at::randn({COLUMNS_N, c.count});
                    const at::Tensor Hinv_full = random_hinv_full(c.count);
                    const at::Tensor Hinv1_ref = hinv_block(Hinv_full.to(ref_device), c.count);
                    const at::Tensor Hinv1_k = hinv_block(Hinv_full.to(cuda), c.count);
                    at::Tensor W_ref = W0.to(ref_device), Q_ref = poisoned_codes(COLUMNS_N, c.count, ref_device),
                               E_ref = at::full({COLUMNS_N, c.count}, NAN, W_ref.options());
                    at::Tensor W_k = W0.to(cuda), Q_k = poisoned_codes(COLUMNS_N, c.count, cuda),
                               E_k = at::full({COLUMNS_N, c.count}, NAN, W_k.options());
                    for (const auto& [a, b] : column_segments(c.c0, c.count, g)) {
                        const quant::GridParams p = quant::grid_params(W_ref.slice(1, a, b), bits, sym);
                        reference(W_ref, Q_ref, E_ref, Hinv1_ref, p, maxq, a, b);
                        kernels::gptq_columns(W_k, Q_k, E_k, Hinv1_k, p.scale.to(cuda), p.zero.to(cuda), maxq, a, b);
                    }
                    EXPECT_TRUE(all_equal(Q_k.slice(1, c.c0), Q_ref.slice(1, c.c0))) << "Q1, " << what;
                    EXPECT_TRUE(all_equal(E_k.slice(1, c.c0), E_ref.slice(1, c.c0))) << "Err1, " << what;
                    EXPECT_TRUE(all_equal(W_k, W_ref)) << "W1, " << what;
                    if (::testing::Test::HasFailure()) return runs;
                    ++runs;
                }
    return runs;
}

}  // namespace

TEST(GptqCuda, ColumnsKernelMatchesAtenOps) {
    const quant::Tf32Guard tf32_off(false);  // the reference's products in full float32
    at::manual_seed(2);
    const int runs = expect_kernel_equals(at::Device(at::kCUDA), columns_aten);
    std::printf("GPTQ column kernel: %d runs equal the per-column ATen ops bit for bit\n", runs);
}

TEST(GptqCuda, ColumnsKernelMatchesCpuTwin) {
    at::manual_seed(3);
    const int runs = expect_kernel_equals(at::Device(at::kCPU), [](at::Tensor& W1, at::Tensor& Q1, at::Tensor& Err1,
                                                                   const at::Tensor& Hinv1, const quant::GridParams& p,
                                                                   int maxq, int64_t a, int64_t b) {
        kernels::gptq_columns(W1, Q1, Err1, Hinv1, p.scale, p.zero, maxq, a, b);
    });
    std::printf("GPTQ column kernel: %d runs equal the CPU twin bit for bit\n", runs);
}

TEST(GptqCuda, ColumnsKernelRejectsBadArguments) {
    const at::Device cuda(at::kCUDA);
    const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat).device(cuda);
    const int64_t N = 4, count = 32;
    at::Tensor W1 = at::randn({N, count}, f32), E = at::empty({N, count}, f32);
    const at::Tensor Q1 = at::empty({N, count}, f32), s = at::ones({N}, f32), z = at::zeros({N}, f32);
    const at::Tensor Hinv1 = at::eye(count, f32);
    EXPECT_THROW(kernels::gptq_columns(W1, Q1, E, Hinv1.cpu(), s, z, 15, 0, count), Error) << "Hinv1 on the CPU";
    EXPECT_THROW(kernels::gptq_columns(W1, Q1, E, Hinv1.t(), s, z, 15, 0, count), Error) << "Hinv1 column-major";
    EXPECT_THROW(kernels::gptq_columns(W1, Q1, E, Hinv1, s, z, 15, 0, count + 1), Error) << "c1 past the block";
    // A block too wide for shared memory: the kernel stages 65 floats per column (over 1 MB here).
    const int64_t wide = 4096;
    at::Tensor W_wide = at::zeros({N, wide}, f32), E_wide = at::empty({N, wide}, f32);
    EXPECT_THROW(kernels::gptq_columns(W_wide, at::empty({N, wide}, f32), E_wide, at::eye(wide, f32), s, z, 15, 0, 32),
                 Error)
        << "a 4096-column block";
}

TEST(GptqCuda, MatchesCpuRun) {
    at::manual_seed(1);
    const int64_t K = 256, N = 128;
    const at::Tensor X = at::randn({512, K}).matmul(at::randn({K, K})) * 0.1, W = at::randn({N, K}) * 0.05;
    for (const int bits : {3, 4})
        for (const bool act_order : {false, true}) {
            quant::QuantOptions o;
            o.bits = bits;
            o.group_size = 64;
            o.act_order = act_order;
            quant::Gptq cpu(K), gpu(K, at::Device(at::kCUDA));
            cpu.add_batch(X);
            gpu.add_batch(X.cuda());
            EXPECT_TRUE(at::allclose(gpu.hessian().cpu(), cpu.hessian(), 1e-4, 1e-3)) << "H";
            const quant::GptqResult rc = cpu.quantize(W, o), rg = gpu.quantize(W.cuda(), o);
            const at::Tensor H = cpu.hessian(), dW = W - quant::dequantize(quant::rtn_quantize(W, o)).t();
            const double rtn = (dW.matmul(H) * dW).sum().item<double>() / (W.matmul(H) * W).sum().item<double>();
            std::printf("GPTQ %d-bit g64 act-order %d rel err: cpu %.4g, cuda %.4g, rtn %.4g\n", bits, int(act_order),
                        rc.rel_error, rg.rel_error, rtn);
            EXPECT_NEAR(rg.rel_error, rc.rel_error, 0.05 * rc.rel_error);
            EXPECT_LT(rg.rel_error, 0.8 * rtn);
        }
}
