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
    int64_t splits = 1;         ///< K is cut into `splits` ranges of split_rows rows
    int64_t split_rows = 0;     ///< a multiple of 32
    float* partial = nullptr;   ///< [splits, M, N] float32 scratch
    const void* bias = nullptr;  ///< [N] of out_type or null
    void* out = nullptr;         ///< [M, N] of out_type
    GemvType out_type = GemvType::F32;
};

/// Number of K ranges for a product of this shape (more ranges: more parallel blocks, more
/// partial sums to add). Returns split_rows through the pointer.
int64_t quant_gemv_cuda_splits(int64_t M, int64_t K, int64_t N, bool vector_loads, int64_t* split_rows);

/// Launches the product kernel and the partial-sum kernel on `stream`; returns a cudaError_t as int.
int quant_gemv_cuda_launch(const GemvArgs& args, void* stream);

}  // namespace lota::kernels
