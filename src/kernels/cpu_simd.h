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

typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef _Float16 v8h __attribute__((vector_size(16)));
typedef float v16f __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef _Float16 v16h __attribute__((vector_size(32)));

/// The vector types of W floats (8 or 16): f float32, u/i 32-bit integers, h float16 (half the bytes).
template <int W>
struct Vec;
template <>
struct Vec<8> {
    using f = v8f;
    using u = v8u;
    using i = v8i;
    using h = v8h;
};
template <>
struct Vec<16> {
    using f = v16f;
    using u = v16u;
    using i = v16i;
    using h = v16h;
};

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

__attribute__((always_inline)) inline v8f load_v8f(const float* p) { return load_vec_bytes<v8f>(p); }
__attribute__((always_inline)) inline v8u load_v8u(const uint32_t* p) { return load_vec_bytes<v8u>(p); }

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
