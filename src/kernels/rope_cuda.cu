// Fused rotary embedding (see rope.h): one thread per pair (d, d + D/2) of an output row, computing
// both outputs with the formula's roundings: each product rounded to the dtype, then their sum
// (__fmul_rn/__fadd_rn so that nothing is contracted into an FMA, which float32 would notice).
#include <cuda_runtime.h>

#include "kernels/quant_gemv_io.cuh"
#include "kernels/rope_cuda.h"

namespace lota::kernels {
namespace {

struct RopeArgs {
    const void* x;
    int64_t xs[4];  // x's strides (elements)
    const void* cos;
    const void* sin;
    void* out;
    int64_t B, H, T, D;
    GemvType t;
};

__global__ void rope_kernel(RopeArgs a) {
    const int64_t half = a.D / 2;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= a.B * a.H * a.T * half) return;
    const int64_t d = i % half, t = i / half % a.T, h = i / half / a.T % a.H, b = i / half / a.T / a.H;
    const int64_t xi = b * a.xs[0] + h * a.xs[1] + t * a.xs[2];
    const float x1 = load_as_float(a.x, a.t, xi + d * a.xs[3]);
    const float x2 = load_as_float(a.x, a.t, xi + (d + half) * a.xs[3]);
    const int64_t ci = (b * a.T + t) * a.D;
    const float c1 = load_as_float(a.cos, a.t, ci + d), c2 = load_as_float(a.cos, a.t, ci + d + half);
    const float s1 = load_as_float(a.sin, a.t, ci + d), s2 = load_as_float(a.sin, a.t, ci + d + half);
    const int64_t oi = ((b * a.H + h) * a.T + t) * a.D;
    // y[d] = x1·c1 + (−x2)·s1, y[d + D/2] = x2·c2 + x1·s2.
    const float y1 = __fadd_rn(round_as(a.t, __fmul_rn(x1, c1)), round_as(a.t, __fmul_rn(-x2, s1)));
    const float y2 = __fadd_rn(round_as(a.t, __fmul_rn(x2, c2)), round_as(a.t, __fmul_rn(x1, s2)));
    store_as(a.out, a.t, oi + d, y1);
    store_as(a.out, a.t, oi + d + half, y2);
}

}  // namespace

int rope_cuda_launch(const void* x, const int64_t (&x_strides)[4], const void* cos, const void* sin, void* out,
                     const int64_t (&sizes)[4], GemvType t, void* stream) {
    RopeArgs a{x, {x_strides[0], x_strides[1], x_strides[2], x_strides[3]}, cos, sin, out,
               sizes[0], sizes[1], sizes[2], sizes[3], t};
    const int64_t n = a.B * a.H * a.T * (a.D / 2);
    if (n == 0) return 0;
    rope_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(a);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace lota::kernels
