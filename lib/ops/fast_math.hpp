#pragma once
// Internal to lib/ops: a float tanh that GCC can vectorize.
//
// glibc's tanhf is a scalar call; it took 57% of an RNN training step. This is a rational
// function fitted by scripts/dev/fit_tanh.py (minimax relative error 6.6e-9 in float64 on
// [0, 9]; with float evaluation it is within a few ulp of tanh, checked in tests/test_rnn.cpp
// and tests/test_activation.cpp):
//   tanh(x) = sign(x) r(min(|x|, 9)),   r(c) = c P(c^2) / Q(c^2), clamped to <= 1
// From |x| = 9 on it returns exactly +-1 (float tanh reaches 1 at 9.01: 1 ulp at most); below |x| = 4e-4 it is x to float precision (and
// returning x keeps the relative accuracy there); a NaN stays NaN (anomaly mode must see it).
// Written without branches, with the selections on the float's bits (for a non-negative float
// the integer order of its bits is its order), so that GCC vectorizes the loop: a float
// comparison in a select counts as possibly trapping and blocks vectorization by default.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/simd.hpp"

namespace tapegrad::detail {

inline float tanh_rational(float x) {
  constexpr float p0 = 0.9999999933980883f, p1 = 0.13084008891380633f, p2 = 0.0031039548144920076f,
                  p3 = 1.1154292180887058e-05f, p4 = -2.0225151324892288e-08f, p5 = 5.277907380660328e-11f,
                  p6 = -8.488591474660055e-14f;
  constexpr float q1 = 0.4641733599546138f, q2 = 0.024495172957651985f, q3 = 0.0002546143098242481f;
  // The bits of 9.0f, 1.0f, 4e-4f and +inf.
  constexpr std::int32_t kNine = 0x41100000, kOne = 0x3f800000, kTiny = 0x39d1b717, kInf = 0x7f800000;
  const auto select = [](bool take_a, std::int32_t a, std::int32_t b) {
    const std::int32_t m = -static_cast<std::int32_t>(take_a);
    return (a & m) | (b & ~m);
  };
  std::int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const std::int32_t mag = bits & 0x7fffffff;
  const std::int32_t sign = bits & static_cast<std::int32_t>(0x80000000u);
  const std::int32_t cb = select(mag < kNine, mag, kNine);
  float c;
  std::memcpy(&c, &cb, sizeof c);
  const float u = c * c;
  const float p = c * ((((((p6 * u + p5) * u + p4) * u + p3) * u + p2) * u + p1) * u + p0);
  const float q = ((q3 * u + q2) * u + q1) * u + 1.0f;
  const float r = p / q;
  std::int32_t rb;
  std::memcpy(&rb, &r, sizeof rb);
  rb = select(rb < kOne && mag < kNine, rb, kOne);  // saturate: exactly 1 from |x| = 9 on
  rb = select(mag < kTiny || mag > kInf, mag, rb) | sign;
  float out;
  std::memcpy(&out, &rb, sizeof out);
  return out;
}

// tanh for the ops: the rational form for float, std::tanh for double (where the PyTorch
// fixtures are matched to 1e-12).
template <class T>
inline T fast_tanh(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return tanh_rational(x);
  } else {
    return std::tanh(x);
  }
}

// y[i] = fast_tanh(x[i]) over a buffer (x and y may be the same), the float loop compiled for
// baseline x86-64, AVX2 and AVX-512F, with the same bits from each (fast_math.cpp).
void tanh_kernel(const float* x, float* y, std::size_t n);
void tanh_kernel(const double* x, double* y, std::size_t n);

}  // namespace tapegrad::detail
