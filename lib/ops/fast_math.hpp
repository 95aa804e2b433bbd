#pragma once
// Internal to lib/: elementary functions for float that GCC vectorizes.
//
// Why: glibc's tanhf is a scalar call of ~10-20 ns (it goes through expm1f); in a small MLP
// with tanh activations it was 65% of a training step (perf, batch 256). The functions here
// are branch-free, so a plain loop over them compiles to SIMD code (4 floats per instruction
// with the baseline x86-64 flags). double keeps the libm functions: double is for gradient
// checks and PyTorch comparisons to 1e-12, not for speed.
//
// Branch-free means both sides of every case are computed and one is chosen with bit masks
// (select below): a `c ? a : b` on floats is turned back into a branch by GCC, and a loop with
// a branch is not vectorized.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// TAPEGRAD_SIMD_CLONES before a hot kernel compiles it twice, for baseline x86-64 (SSE2) and
// for AVX2; the dynamic loader picks one per machine (GCC's target_clones, an ifunc). AVX2
// without FMA: both clones do the same operations in the same order, so their results are
// bitwise equal. Elsewhere (other compilers, other CPUs, -march=native builds) it is empty.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__)
#define TAPEGRAD_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TAPEGRAD_SIMD_CLONES
#endif
// The inner templates of a cloned kernel must be inlined into it to get the clone's ISA.
#if defined(__GNUC__)
#define TAPEGRAD_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TAPEGRAD_ALWAYS_INLINE inline
#endif

namespace tapegrad::detail {

inline std::int32_t float_bits(float f) {
  std::int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
inline float bits_float(std::int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
// c ? a : b, without a branch.
inline float select(bool c, float a, float b) {
  const std::int32_t m = -static_cast<std::int32_t>(c);
  return bits_float((float_bits(a) & m) | (float_bits(b) & ~m));
}

// tanh for float, after Cephes' tanhf (S. Moshier), with a branch-free exp:
//   |x| < 0.625:  tanh x = x + x^3 P(x^2)            (minimax polynomial, degree 5 in x^2)
//   otherwise:    tanh |x| = 1 - 2 / (e^{2|x|} + 1),  sign restored with copysign
// e^y for y = 2|x| in [1.25, 20]: y = k ln2 + r with k = round(y / ln2) and |r| <= ln2 / 2
// (ln2 split in two parts so k ln2 is exact), e^r by Cephes' expf polynomial, 2^k by writing
// the exponent bits. |x| is clamped to 10: from 9.01 on, tanh rounds to 1 in float.
// Accuracy, checked against double tanh on every finite float: max error 1.33 ulp (at
// x = 0.6283), 7.9e-8 absolute. tanh(±inf) = ±1, tanh(NaN) = NaN, tanh(-0) = -0.
inline float tanh_float(float x) {
  const float ax = std::fabs(x);
  const float a = select(ax > 10.0f, 10.0f, ax);  // a NaN fails the comparison and stays NaN
  const float z = a * a;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * a + a;
  const float y = 2.0f * a;
  const float k = static_cast<float>(static_cast<std::int32_t>(y * 1.44269504088896341f + 0.5f));
  const float r = (y - k * 0.693359375f) - k * -2.12194440e-4f;
  const float er = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                      4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r +
                   r + 1.0f;
  const float e = er * bits_float((static_cast<std::int32_t>(k) + 127) << 23);  // e^r 2^k
  const float large = 1.0f - 2.0f / (e + 1.0f);
  return std::copysign(select(a < 0.625f, small, large), x);
}

// y[i] = tanh(x[i]): vectorized for float, std::tanh for double. x and y may be the same.
void tanh_kernel(const float* x, float* y, std::size_t n);
void tanh_kernel(const double* x, double* y, std::size_t n);

}  // namespace tapegrad::detail
