// CUDA twin of the GPTQ dequantization op (see dequant.h, reference in dequant_cpu.cpp).
// One thread per (output column n, chunk of 32 rows k): consecutive threads take consecutive n,
// so code-word reads, scale/zero reads and output writes are coalesced; the words of one column
// are re-read from L1 for each code. The formula is kernels::dequant_value, so results equal the
// CPU reference bit for bit (no FMA contraction is possible in s·((q − z) + f)).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/dequant_cuda.h"
#include "kernels/dequant_formula.h"

namespace lota::kernels {
namespace {

constexpr int THREADS_N = 128;
constexpr int ROWS_PER_THREAD = 32;

__device__ __forceinline__ void store(float* out, int64_t i, float v) { out[i] = v; }
__device__ __forceinline__ void store(__half* out, int64_t i, float v) { out[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* out, int64_t i, float v) { out[i] = __float2bfloat16_rn(v); }

template <typename T>
__global__ void dequant_kernel(const int32_t* __restrict__ qweight, const int32_t* __restrict__ zeros,
                               const __half* __restrict__ scales, const int32_t* __restrict__ g_idx,
                               const float* __restrict__ offset, int64_t K, int64_t N, int bits,
                               T* __restrict__ out) {
    const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int64_t k0 = static_cast<int64_t>(blockIdx.y) * ROWS_PER_THREAD;
    const int64_t k1 = k0 + ROWS_PER_THREAD < K ? k0 + ROWS_PER_THREAD : K;
    for (int64_t k = k0; k < k1; ++k) {
        const int64_t g = g_idx[k];
        const int32_t q = static_cast<int32_t>(gptq_stream_get(qweight + n, N, k, bits));
        const float s = __half2float(scales[g * N + n]);
        const float f = offset ? offset[g * N + n] : 0.0f;
        store(out, k * N + n, dequant_value(q, zeros[g * N + n], s, f));
    }
}

template <typename T>
void launch(const int32_t* qweight, const int32_t* zeros, const uint16_t* scales, const int32_t* g_idx,
            const float* offset, int64_t K, int64_t N, int bits, void* out, cudaStream_t stream) {
    const dim3 block(THREADS_N);
    const dim3 grid(static_cast<unsigned>((N + THREADS_N - 1) / THREADS_N),
                    static_cast<unsigned>((K + ROWS_PER_THREAD - 1) / ROWS_PER_THREAD));
    dequant_kernel<T><<<grid, block, 0, stream>>>(qweight, zeros, reinterpret_cast<const __half*>(scales), g_idx,
                                                  offset, K, N, bits, static_cast<T*>(out));
}

}  // namespace

int dequant_cuda_launch(const int32_t* qweight, const int32_t* zeros, const uint16_t* scales, const int32_t* g_idx,
                        const float* offset, int64_t K, int64_t N, int bits, DequantOut out_type, void* out,
                        void* stream) {
    if (K == 0 || N == 0) return 0;
    const auto s = static_cast<cudaStream_t>(stream);
    switch (out_type) {
        case DequantOut::F32: launch<float>(qweight, zeros, scales, g_idx, offset, K, N, bits, out, s); break;
        case DequantOut::F16: launch<__half>(qweight, zeros, scales, g_idx, offset, K, N, bits, out, s); break;
        case DequantOut::BF16: launch<__nv_bfloat16>(qweight, zeros, scales, g_idx, offset, K, N, bits, out, s); break;
    }
    return static_cast<int>(cudaGetLastError());
}

const char* dequant_cuda_error_string(int err) { return cudaGetErrorString(static_cast<cudaError_t>(err)); }

}  // namespace lota::kernels
