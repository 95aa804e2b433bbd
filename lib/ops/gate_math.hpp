#pragma once
// Internal to lib/ops: the gate nonlinearities of the LSTM and GRU kernels, inlined into their
// loops (so that the float loops vectorize in each SIMD clone, lib/core/simd.hpp).
//   float:  tanh = the rational form of fast_math.hpp (within 6 ulp), σ(a) = (1 + tanh(a/2)) / 2
//           (within about 1e-7 absolute: σ is a probability, its absolute error is what counts;
//           it is exactly 0 below a = -18, where σ < 1.6e-8)
//   double: std::tanh and 1 / (1 + exp(-a)), as PyTorch computes them (the fixtures are matched
//           to 1e-12)
#include <cmath>

#include "fast_math.hpp"

namespace tapegrad::detail {

TAPEGRAD_ALWAYS_INLINE float gate_tanh(float a) { return tanh_rational(a); }
TAPEGRAD_ALWAYS_INLINE double gate_tanh(double a) { return std::tanh(a); }
TAPEGRAD_ALWAYS_INLINE float gate_sigmoid(float a) { return 0.5f + 0.5f * tanh_rational(0.5f * a); }
TAPEGRAD_ALWAYS_INLINE double gate_sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }

}  // namespace tapegrad::detail
