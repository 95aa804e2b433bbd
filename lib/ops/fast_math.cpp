#include "fast_math.hpp"

namespace tapegrad::detail {

TAPEGRAD_SIMD_CLONES_512 void tanh_kernel(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = tanh_rational(x[i]);
}

void tanh_kernel(const double* x, double* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace tapegrad::detail
