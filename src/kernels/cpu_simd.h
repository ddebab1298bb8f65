// Float vectors for the CPU decode kernels (dense_gemv_cpu.cpp, quant_gemv_cpu.cpp), written with GCC
// vector types so one source builds for every ISA: 8-float vectors for the baseline ISA and, through
// LOTA_CPU_CLONES, for AVX2+FMA (x86-64-v3), picked by the loader where the CPU has it; 16-float vectors
// in functions marked LOTA_CPU_AVX512, called where cpu_vector_floats() is 16. Include only from those
// .cpp files: the -Wpsabi pragma below is file-wide.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/Version.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOTA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define LOTA_CPU_AVX512 __attribute__((target("arch=x86-64-v4")))
#define LOTA_HAVE_CPU_AVX512 1
#else
#define LOTA_CPU_CLONES
#define LOTA_HAVE_CPU_AVX512 0
#endif

#if defined(__GNUC__)
namespace lota::kernels {

/// The vector types of W floats (8 or 16): f float32, u/i 32-bit integers, h float16 (half the bytes).
template <int W>
struct Vec {
    typedef float f __attribute__((vector_size(4 * W)));
    typedef uint32_t u __attribute__((vector_size(4 * W)));
    typedef int32_t i __attribute__((vector_size(4 * W)));
    typedef _Float16 h __attribute__((vector_size(2 * W)));
};
using v8f = Vec<8>::f;
using v8u = Vec<8>::u;
using v16f = Vec<16>::f;
using v16u = Vec<16>::u;

// The helpers are internal and always inlined, so the vector return's ABI (psabi warns for the non-AVX
// build) never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

/// sizeof(V) bytes from p (any alignment).
template <typename V, typename T>
__attribute__((always_inline)) inline V load_vec_bytes(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

/// Floats a vector of the widest build this CPU runs: 16 with AVX-512 (F, BW, CD, DQ, VL), else 8. It
/// follows ATen's own choice, so ATEN_CPU_CAPABILITY=avx2 (or default) keeps lota's kernels at 8 floats too.
inline int cpu_vector_floats() {
#if LOTA_HAVE_CPU_AVX512
    static const int floats = at::get_cpu_capability() == "AVX512" ? 16 : 8;
    return floats;
#else
    return 8;
#endif
}

}  // namespace lota::kernels
#endif
