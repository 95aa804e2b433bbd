#pragma once
// Internal to lib/: how hot loops are compiled for more than one instruction set.
// TAPEGRAD_SIMD_CLONES before a hot kernel compiles it twice, for baseline x86-64 (SSE2) and
// for AVX2; the dynamic loader picks one per machine (GCC's target_clones, an ifunc). AVX2
// without FMA: both clones do the same operations in the same order, so their results are
// bitwise equal. Elsewhere (other compilers, other CPUs, -march=native builds) it is empty.
// Also empty under ThreadSanitizer (TAPEGRAD_TSAN; GCC defines __SANITIZE_THREAD__): the
// clones' ifunc resolvers run during relocation, before TSan's runtime is initialised, and
// crash it or make it report false races.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(__SANITIZE_THREAD__)
#define TAPEGRAD_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define TAPEGRAD_SIMD_CLONES_512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TAPEGRAD_SIMD_CLONES
#define TAPEGRAD_SIMD_CLONES_512
#endif
// TAPEGRAD_SIMD_CLONES_512 adds an AVX-512F clone, for compute-bound kernels (the float tanh:
// 16 lanes where AVX2 has 8). GCC's avx512f target includes FMA, so a file using it must be
// compiled with -ffp-contract=off (CMakeLists.txt) to keep the clones' results bitwise equal:
// checked by hashing tanh over 44 million floats built for baseline, AVX2 and AVX-512F.
// LayerNorm's kernels have one too (about 5% there, after their stores were aligned).
// The inner templates of a cloned kernel must be inlined into it to get the clone's ISA.
#if defined(__GNUC__)
#define TAPEGRAD_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TAPEGRAD_ALWAYS_INLINE inline
#endif
