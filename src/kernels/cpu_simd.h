// 8-float vectors for the CPU decode kernels (dense_gemv_cpu.cpp, quant_gemv_cpu.cpp), written with GCC
// vector types so one source builds for the baseline ISA and, through LOTA_CPU_CLONES, for AVX2+FMA
// (x86-64-v3), picked by the loader where the CPU has it. Include only from those .cpp files: the
// -Wpsabi pragma below is file-wide.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOTA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LOTA_CPU_CLONES
#endif

#if defined(__GNUC__)
namespace lota::kernels {

typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef _Float16 v8h __attribute__((vector_size(16)));

// The helpers are internal and always inlined, so the vector return's ABI (psabi warns for the non-AVX
// build) never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

__attribute__((always_inline)) inline v8f load_v8f(const float* p) {
    v8f v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

__attribute__((always_inline)) inline v8u load_v8u(const uint32_t* p) {
    v8u v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

}  // namespace lota::kernels
#endif
