#include "tapegrad/core/random.hpp"

#include <cmath>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

void Generator::bad_uniform(double lo, double hi) {
  throw ValueError("uniform: need finite lo <= hi, got lo " + std::to_string(lo) + ", hi " +
                   std::to_string(hi));
}

namespace {
void check_normal(double mean, double std) {
  if (!(std >= 0 && std::isfinite(std) && std::isfinite(mean))) {
    throw ValueError("normal: need a finite mean and a finite std >= 0, got mean " + std::to_string(mean) +
                     ", std " + std::to_string(std));
  }
}
}  // namespace

double Generator::normal(double mean, double std) {
  check_normal(mean, std);
  if (has_spare_) {
    has_spare_ = false;
    return mean + std * spare_;
  }
  // Box-Muller: two independent N(0, 1) from two uniforms; u1 in (0, 1] keeps log finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double kTwoPi = 6.283185307179586;
  spare_ = r * std::sin(kTwoPi * u2);
  has_spare_ = true;
  return mean + std * r * std::cos(kTwoPi * u2);
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) throw ValueError("below: the range [0, n) is empty for n = 0");
  // Rejection sampling: unbiased for every n.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v;
  do {
    v = engine_();
  } while (v >= limit);
  return v % n;
}

Generator& default_generator() {
  thread_local Generator g(0);
  return g;
}

void manual_seed(std::uint64_t seed) { default_generator() = Generator(seed); }

template <class T>
xt::xarray<T> uniform_array(const Shape& shape, double lo, double hi, Generator& gen) {
  if (!(lo <= hi && std::isfinite(hi - lo))) {  // before drawing: the generator is unchanged
    throw ValueError("uniform_array: need finite lo <= hi, got lo " + std::to_string(lo) + ", hi " +
                     std::to_string(hi));
  }
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = static_cast<T>(gen.uniform(lo, hi));
  return a;
}

template <class T>
xt::xarray<T> normal_array(const Shape& shape, double mean, double std, Generator& gen) {
  check_normal(mean, std);  // before drawing: the generator is unchanged
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = static_cast<T>(gen.normal(mean, std));
  return a;
}

template xt::xarray<float> uniform_array<float>(const Shape&, double, double, Generator&);
template xt::xarray<double> uniform_array<double>(const Shape&, double, double, Generator&);
template xt::xarray<float> normal_array<float>(const Shape&, double, double, Generator&);
template xt::xarray<double> normal_array<double>(const Shape&, double, double, Generator&);

}  // namespace tapegrad
