// Raw-pointer launcher of the decode-sized quantized matrix product (see quant_gemv.h); no torch
// here, so the file compiles with nvcc alone.
#pragma once

#include <cstdint>

namespace lota::kernels {

enum class GemvType { F32 = 0, F16 = 1, BF16 = 2 };

struct GemvArgs {
    const void* x = nullptr;  ///< [M, K] of x_type, contiguous
    GemvType x_type = GemvType::F32;
    int64_t M = 0, K = 0, N = 0;
    const int32_t* qweight = nullptr;  ///< [K*bits/32, N]
    const int32_t* zeros = nullptr;    ///< [G, N]
    const uint16_t* scales = nullptr;  ///< fp16 [G, N]
    const int32_t* g_idx = nullptr;    ///< [K]
    const float* offset = nullptr;     ///< [G, N] or null
    int bits = 4;
    int64_t group_rows = 0;  ///< > 0: g = k / group_rows (a multiple of 32); 0: g = g_idx[k]
    bool vector_loads = false;  ///< N % 4 == 0 and 16-byte aligned rows: 4 columns per thread
    bool tensor_cores = false;  ///< set by quant_gemv_cuda_plan: the tensor-core kernel runs
    bool tc_codes_a = false;    ///< set by the plan: with up to 8 rows, the tensor-core kernel takes the codes as A
    int tc_batch = 4;           ///< tensor-core kernel: steps whose loads a warp issues together (2, 4, 8)
    bool tc_pdl = false;        ///< tensor-core kernel: launched to start before the previous kernel ends
    bool tc_x_smem = false;     ///< tensor-core kernel, codes as A: x copied through shared memory, not registers
    int64_t splits = 1;         ///< K is cut into `splits` ranges of split_rows rows
    int64_t split_rows = 0;     ///< a multiple of 32
    float* partial = nullptr;   ///< [splits, M, N] float32 scratch
    const void* bias = nullptr;  ///< [N] of out_type or null
    void* out = nullptr;         ///< [M, N] of out_type
    GemvType out_type = GemvType::F32;
};

/// Knobs of the plan, for tests and benchmarks that compare or sweep them (0: the default, the
/// measured best).
struct GemvTuning {
    int tc_min_rows = 0;     ///< fewest rows of x that use the tensor-core kernel (default 1)
    int tc_a_max_rows = 0;   ///< most rows of x (up to 8) whose tensor-core kernel takes the codes as A (< 0: none)
    int tc_batch = 0;        ///< its steps of loads issued together per warp: 2, 4 or 8
    double tc_waves = 0.0;   ///< resident-block waves its K ranges are cut for (default 1; see tc_block_steps)
    int simt_blocks_per_sm = 0;  ///< SIMT kernel: blocks per SM its K ranges aim at (< 0: as many as fit, one wave)
    bool tensor_cores = true;    ///< false: the SIMT kernel runs every case
    int tc_pdl = 0;              ///< < 0: the tensor-core kernel waits for the previous kernel to end before it starts
    /// The tensor-core kernel's K ranges are cut for the fewest whole waves × (steps per warp + this fixed
    /// cost of a block, in steps); default 4 unless tc_waves is set; < 0: cut for tc_waves
    double tc_block_steps = 0.0;
    int tc_x_smem = 0;  ///< codes-as-A kernel: x through shared memory (cp.async; the default), < 0: registers
};

/// Chooses the kernel (the tensor-core one when tuning.tensor_cores and quant_gemv_tc_eligible,
/// else the SIMT one) and the number of K ranges (more ranges: more parallel blocks, more partial
/// sums to add); sets a.tensor_cores, a.splits and a.split_rows. All other fields must be set.
void quant_gemv_cuda_plan(GemvArgs& a, const GemvTuning& tuning = {});

/// Launches the product kernel on `stream` (its last block per column tile adds the K ranges; a separate
/// partial-sum kernel only when the tile counters are unavailable); returns a cudaError_t as int.
int quant_gemv_cuda_launch(const GemvArgs& args, void* stream);

// The tensor-core kernel (quant_gemv_tc_cuda.cu): bf16/f16 x of 1–16 rows, 2- or 4-bit codes,
// contiguous groups, N a multiple of 32, 16-byte aligned tensors, compute capability >= 8.0.
bool quant_gemv_tc_eligible(const GemvArgs& a);
int64_t quant_gemv_tc_splits(const GemvArgs& a, const GemvTuning& tuning, int sm_count, int64_t* split_rows);
void quant_gemv_tc_launch(const GemvArgs& a, void* stream);

// Arrival counters of the kernels' last-block reduction (the last block of a column tile to finish adds
// every K range's partial sums): QUANT_GEMV_MAX_TILES zeroed ints per device, made on the first call (so
// the first call must not be inside a CUDA-graph capture; DecodeGraph's eager warm-up is that call), or
// null when they cannot be made. Every launch leaves them at zero. Launches on concurrent streams of one
// device would share them: decode runs on one stream.
constexpr int64_t QUANT_GEMV_MAX_TILES = int64_t(1) << 16;
int* quant_gemv_tile_counters();

}  // namespace lota::kernels
