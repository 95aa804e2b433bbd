#pragma once
// Seeded random numbers for initialization, dropout and data.
//
// Every module constructor and data generator takes a Generator&. For convenience (and like
// torch.manual_seed) there is one thread-local default generator; `manual_seed(s)` reseeds it.
// That thread-local engine is the only RNG state in the library.
#include <cstdint>
#include <random>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  void seed(std::uint64_t s) { engine_.seed(s); }
  // U[lo, hi): the top 53 bits of one engine draw, so values are the same with any
  // standard library and never reach hi.
  // lo <= hi, both finite with a finite hi - lo, else ValueError (one compare when inlined).
  double uniform(double lo = 0.0, double hi = 1.0) {
    if (!(lo <= hi && hi - lo <= 1.7976931348623157e308)) bad_uniform(lo, hi);
    return lo + (hi - lo) * (static_cast<double>(engine_() >> 11) * 0x1.0p-53);
  }
  // N(mean, std^2) for finite mean and std >= 0 (else ValueError), Box-Muller on our own uniforms so values do not depend on the standard
  // library's distribution implementation.
  double normal(double mean = 0.0, double std = 1.0);
  // Uniform integer in [0, n); n = 0 is a ValueError.
  std::uint64_t below(std::uint64_t n);
  std::mt19937_64& engine() { return engine_; }

 private:
  [[noreturn]] static void bad_uniform(double lo, double hi);
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// The thread-local default generator (seed 0 until manual_seed is called).
Generator& default_generator();
void manual_seed(std::uint64_t seed);

template <class T>
xt::xarray<T> uniform_array(const Shape& shape, double lo, double hi, Generator& gen);
template <class T>
xt::xarray<T> normal_array(const Shape& shape, double mean, double std, Generator& gen);

}  // namespace tapegrad
