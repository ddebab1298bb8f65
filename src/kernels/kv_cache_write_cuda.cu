// KV-cache write (see kv_cache_write.h): one thread per element of k and of v, copied as raw bits to
// the slot write_pos[0] read on the device; a slot outside [0, S) writes nothing.
#include <cuda_runtime.h>

#include "kernels/kv_cache_write_cuda.h"

namespace lota::kernels {
namespace {

template <typename E>
__global__ void kv_cache_write_kernel(KvSource k, KvSource v, const int64_t* write_pos, int64_t B, int64_t H,
                                      int64_t S, int64_t D) {
    const int64_t n = B * H * D;
    int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= 2 * n) return;
    const int64_t p = *write_pos;
    if (p < 0 || p >= S) return;
    const KvSource& s = i < n ? k : v;
    if (i >= n) i -= n;
    const int64_t d = i % D, h = i / D % H, b = i / D / H;
    const E* src = static_cast<const E*>(s.src);
    static_cast<E*>(s.cache)[((b * H + h) * S + p) * D + d] = src[b * s.stride[0] + h * s.stride[1] + d * s.stride[2]];
}

}  // namespace

int kv_cache_write_cuda_launch(const KvSource& k, const KvSource& v, const int64_t* write_pos, int64_t B, int64_t H,
                               int64_t S, int64_t D, int bytes, void* stream) {
    const int64_t threads = 2 * B * H * D;
    if (threads == 0) return 0;
    const auto grid = static_cast<unsigned>((threads + 255) / 256);
    const auto st = static_cast<cudaStream_t>(stream);
    if (bytes == 2)
        kv_cache_write_kernel<uint16_t><<<grid, 256, 0, st>>>(k, v, write_pos, B, H, S, D);
    else
        kv_cache_write_kernel<uint32_t><<<grid, 256, 0, st>>>(k, v, write_pos, B, H, S, D);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace lota::kernels
