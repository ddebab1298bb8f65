// Fused LoTA re-merge (see lota_remerge_cuda.h). The tensor-op formulation in quant/lota_remerge.cpp
// is the CPU twin; the per-weight step is kernels/lota_remerge_formula.h, which a CPU test also runs
// over whole layers; the CUDA test checks codes, flags and offsets against the twin bit for bit.
//
// Work split: a thread owns a tile of R rows × 8 columns that fills whole packed words: R = 32/bits
// rows in 8 words (one per column) for 2, 4 and 8 bits, R = 32 rows in 24 words for 3 bits (whose
// codes straddle words), and R flag bytes (one per row), so every output byte has one writer and
// no atomics touch global codes. A block holds one group's rows (threadIdx.y over the group's row
// tiles) for a strip of columns (threadIdx.x), so the group sums ΣP and ΣM reduce in shared memory
// and F is written once per (group, column), without a second pass. Traffic per weight: two
// float16 products (4 bytes) plus the codes and flags read and written (≈ 1.3 bytes at 4 bits);
// the tensor-op version moved ≈ 60.
#include <cuda_runtime.h>

#include "kernels/lota_remerge_cuda.h"
#include "kernels/lota_remerge_formula.h"

namespace lota::kernels {
namespace {

constexpr int THREADS = 256;
constexpr int COLS = 8;                 // columns per thread: one flag byte per row
constexpr int MAX_X = THREADS;          // threadIdx.x extent when a group is one row tile

template <int BITS>
__global__ void __launch_bounds__(THREADS)
    remerge_kernel(const int32_t* __restrict__ qweight, const uint8_t* __restrict__ moved,
                   const uint16_t* __restrict__ p_old, const uint16_t* __restrict__ p_new, int32_t* __restrict__ qweight_out,
                   uint8_t* __restrict__ moved_out, float* __restrict__ offset, unsigned long long* __restrict__ counts,
                   int64_t N, int64_t g, int t, double omega, double g_omega) {
    constexpr int R = remerge_tile_rows(BITS);  // rows of a tile
    constexpr int WR = R * BITS / 32;           // its word rows (3 for 3 bits, else 1)
    __shared__ int sum_p[MAX_X * COLS];
    __shared__ int sum_m[MAX_X * COLS];
    __shared__ unsigned int n_up, n_down;

    const int64_t n_tiles = N / COLS;
    const int64_t tile = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = tile < n_tiles;
    const int64_t j = blockIdx.y;  // group
    const int lane_cols = threadIdx.x * COLS;

    for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < blockDim.x * COLS; i += blockDim.x * blockDim.y) {
        sum_p[i] = 0;
        sum_m[i] = 0;
    }
    if (threadIdx.x == 0 && threadIdx.y == 0) n_up = n_down = 0;
    __syncthreads();

    int sp[COLS] = {}, sm[COLS] = {};
    unsigned up = 0, down = 0;
    if (active) {
        const int64_t n0 = tile * COLS;
        const int64_t tiles_per_group = g / R;
        for (int64_t rt = threadIdx.y; rt < tiles_per_group; rt += blockDim.y) {
            const int64_t k0 = j * g + rt * R;  // first row of this tile
            const int64_t w = k0 / R * WR;      // its first packed word row
            int32_t words[WR][COLS];  // bit streams of stride COLS (remerge_row8)
#pragma unroll
            for (int x = 0; x < WR; ++x) {
                const uint4* wsrc = reinterpret_cast<const uint4*>(qweight + (w + x) * N + n0);
                const uint4 w_lo = wsrc[0], w_hi = wsrc[1];
                const uint32_t v[COLS] = {w_lo.x, w_lo.y, w_lo.z, w_lo.w, w_hi.x, w_hi.y, w_hi.z, w_hi.w};
                for (int c = 0; c < COLS; ++c) words[x][c] = static_cast<int32_t>(v[c]);
            }
            uint32_t new_words[WR][COLS] = {};
#pragma unroll
            for (int i = 0; i < R; ++i) {
                const int64_t k = k0 + i;
                const int64_t e = k * N + n0;  // flat index of (k, n0): a multiple of 8
                const unsigned flags = moved[e / 8];
                const uint4 pn_raw = *reinterpret_cast<const uint4*>(p_new + e);
                uint4 po_raw = make_uint4(0, 0, 0, 0);
                if (p_old != nullptr && flags != 0) po_raw = *reinterpret_cast<const uint4*>(p_old + e);
                const unsigned new_flags = remerge_row8<BITS>(
                    i, &words[0][0], flags, reinterpret_cast<const uint16_t*>(&po_raw),
                    reinterpret_cast<const uint16_t*>(&pn_raw), t, &new_words[0][0], sp, sm, up, down);
                moved_out[e / 8] = static_cast<uint8_t>(new_flags);
            }
#pragma unroll
            for (int x = 0; x < WR; ++x) {
                uint4* wdst = reinterpret_cast<uint4*>(qweight_out + (w + x) * N + n0);
                wdst[0] = make_uint4(new_words[x][0], new_words[x][1], new_words[x][2], new_words[x][3]);
                wdst[1] = make_uint4(new_words[x][4], new_words[x][5], new_words[x][6], new_words[x][7]);
            }
        }
#pragma unroll
        for (int c = 0; c < COLS; ++c) {
            if (blockDim.y == 1) {
                sum_p[lane_cols + c] = sp[c];
                sum_m[lane_cols + c] = sm[c];
            } else {
                atomicAdd(&sum_p[lane_cols + c], sp[c]);  // integers: exact in any order
                atomicAdd(&sum_m[lane_cols + c], sm[c]);
            }
        }
    }
    if (up) atomicAdd(&n_up, up);
    if (down) atomicAdd(&n_down, down);
    __syncthreads();

    if (active && threadIdx.y == 0) {
        const int64_t n0 = tile * COLS;
#pragma unroll
        for (int c = 0; c < COLS; ++c) {
            // lota_offset_from_sums in float64, op for op (no contraction into an FMA), then float32.
            const double num = __dsub_rn(static_cast<double>(sum_p[lane_cols + c]),
                                         __dmul_rn(static_cast<double>(sum_m[lane_cols + c]), omega));
            offset[j * N + n0 + c] = __double2float_rn(__ddiv_rn(num, g_omega));
        }
    }
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        if (n_up) atomicAdd(&counts[0], static_cast<unsigned long long>(n_up));
        if (n_down) atomicAdd(&counts[1], static_cast<unsigned long long>(n_down));
    }
}

}  // namespace

int lota_remerge_cuda_launch(const int32_t* qweight, const uint8_t* moved, const uint16_t* p_old,
                             const uint16_t* p_new, int32_t* qweight_out, uint8_t* moved_out, float* offset,
                             unsigned long long* counts, int64_t K, int64_t N, int64_t g, int bits, int t,
                             double omega, void* stream) {
    if (K == 0 || N == 0) return 0;
    const int R = remerge_tile_rows(bits);
    const int64_t tiles_per_group = g / R;
    const int y = static_cast<int>(tiles_per_group < 32 ? tiles_per_group : 32);
    const int64_t n_tiles = N / COLS;
    int x = THREADS / y;
    if (x > n_tiles) x = static_cast<int>(n_tiles);
    const dim3 block(x, y);
    const dim3 grid(static_cast<unsigned>((n_tiles + x - 1) / x), static_cast<unsigned>(K / g));
    const uint16_t* po = p_old;
    const uint16_t* pn = p_new;
    const double g_omega = static_cast<double>(g) * omega;
    auto s = static_cast<cudaStream_t>(stream);
    switch (bits) {
        case 2:
            remerge_kernel<2><<<grid, block, 0, s>>>(qweight, moved, po, pn, qweight_out, moved_out, offset, counts, N,
                                                     g, t, omega, g_omega);
            break;
        case 3:
            remerge_kernel<3><<<grid, block, 0, s>>>(qweight, moved, po, pn, qweight_out, moved_out, offset, counts, N,
                                                     g, t, omega, g_omega);
            break;
        case 4:
            remerge_kernel<4><<<grid, block, 0, s>>>(qweight, moved, po, pn, qweight_out, moved_out, offset, counts, N,
                                                     g, t, omega, g_omega);
            break;
        case 8:
            remerge_kernel<8><<<grid, block, 0, s>>>(qweight, moved, po, pn, qweight_out, moved_out, offset, counts, N,
                                                     g, t, omega, g_omega);
            break;
        default:
            return static_cast<int>(cudaErrorInvalidValue);
    }
    return static_cast<int>(cudaGetLastError());
}

}  // namespace lota::kernels
