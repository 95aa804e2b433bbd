#include "tapegrad/data/synthetic.hpp"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

constexpr double kPi = 3.14159265358979323846;

// u in [0, 1) with 53 random bits.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
double uniform(std::mt19937_64& rng, double a, double b) { return a + (b - a) * uniform01(rng); }
// Box-Muller; 1 - u1 is in (0, 1], so the log is finite.
double normal(std::mt19937_64& rng) {
  const double u1 = uniform01(rng);
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * kPi * u2);
}

// n >= min, and not a negative int passed as a size (checked_size).
void check_count(const char* fn, const char* name, std::size_t n, std::size_t min) {
  checked_size((std::string(fn) + ": " + name).c_str(), n);
  if (n < min) {
    throw ValueError(std::string(fn) + ": " + name + " must be >= " + std::to_string(min) + "; got " +
                     std::to_string(n));
  }
}

void check_scale(const char* fn, const char* name, double v) {
  if (!(v >= 0.0) || !std::isfinite(v)) {
    throw ValueError(std::string(fn) + ": " + name + " must be finite and >= 0; got " + std::to_string(v));
  }
}

}  // namespace

template <class T>
Dataset<T> two_spirals(std::size_t n_per_class, double noise, std::uint64_t seed) {
  check_count("two_spirals", "n_per_class", n_per_class, 1);
  check_scale("two_spirals", "noise", noise);
  std::mt19937_64 rng(seed);
  const std::size_t n = n_per_class;
  checked_mul("two_spirals: 2 classes * n_per_class * 2 features",
              checked_mul("two_spirals: 2 * n_per_class", 2, n), 2);
  xt::xarray<T> x = xt::xarray<T>::from_shape({2 * n, 2});
  std::vector<std::int64_t> y(2 * n);
  for (std::size_t c = 0; c < 2; ++c) {
    const double sign = c == 0 ? 1.0 : -1.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double t = static_cast<double>(i + 1) / static_cast<double>(n);
      const double theta = 4.0 * kPi * t;
      const std::size_t row = c * n + i;
      x(row, 0) = static_cast<T>(sign * t * std::cos(theta) + noise * normal(rng));
      x(row, 1) = static_cast<T>(sign * t * std::sin(theta) + noise * normal(rng));
      y[row] = static_cast<std::int64_t>(c);
    }
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template <class T>
Dataset<T> moons(std::size_t n, double noise, std::uint64_t seed) {
  check_count("moons", "n", n, 1);
  check_scale("moons", "noise", noise);
  checked_mul("moons: n * 2 features", n, 2);
  std::mt19937_64 rng(seed);
  const std::size_t n_out = n / 2;
  const std::size_t n_in = n - n_out;
  // np.linspace(0, pi, k)[i]
  auto angle = [](std::size_t i, std::size_t k) {
    return k <= 1 ? 0.0 : kPi * static_cast<double>(i) / static_cast<double>(k - 1);
  };
  xt::xarray<T> x = xt::xarray<T>::from_shape({n, 2});
  std::vector<std::int64_t> y(n);
  for (std::size_t row = 0; row < n; ++row) {
    const bool outer = row < n_out;
    const double a = outer ? angle(row, n_out) : angle(row - n_out, n_in);
    const double px = outer ? std::cos(a) : 1.0 - std::cos(a);
    const double py = outer ? std::sin(a) : 1.0 - std::sin(a) - 0.5;
    x(row, 0) = static_cast<T>(px + noise * normal(rng));
    x(row, 1) = static_cast<T>(py + noise * normal(rng));
    y[row] = outer ? 0 : 1;
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template <class T>
Dataset<T> gaussian_blobs(std::size_t n, std::size_t centers, std::size_t dim, double std,
                          std::uint64_t seed) {
  check_count("gaussian_blobs", "n", n, 1);
  check_count("gaussian_blobs", "centers", centers, 1);
  check_count("gaussian_blobs", "dim", dim, 1);
  check_scale("gaussian_blobs", "std", std);
  checked_mul("gaussian_blobs: centers * dim", centers, dim);
  checked_mul("gaussian_blobs: n * dim", n, dim);
  std::mt19937_64 rng(seed);
  std::vector<double> mu(centers * dim);
  for (auto& m : mu) m = uniform(rng, -10.0, 10.0);
  xt::xarray<T> x = xt::xarray<T>::from_shape({n, dim});
  std::vector<std::int64_t> y(n);
  std::size_t row = 0;
  for (std::size_t c = 0; c < centers; ++c) {
    const std::size_t n_c = n / centers + (c < n % centers ? 1 : 0);
    for (std::size_t k = 0; k < n_c; ++k, ++row) {
      for (std::size_t d = 0; d < dim; ++d) {
        x(row, d) = static_cast<T>(mu[c * dim + d] + std * normal(rng));
      }
      y[row] = static_cast<std::int64_t>(c);
    }
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template <class T>
Dataset<T> adding_problem(std::size_t n, std::size_t seq_len, std::uint64_t seed) {
  check_count("adding_problem", "n", n, 1);
  check_count("adding_problem", "seq_len", seq_len, 2);
  checked_mul("adding_problem: n * seq_len * 2", checked_mul("adding_problem: n * seq_len", n, seq_len), 2);
  std::mt19937_64 rng(seed);
  const std::size_t half = seq_len / 2;
  xt::xarray<T> x = xt::zeros<T>({n, seq_len, std::size_t(2)});
  xt::xarray<T> y = xt::xarray<T>::from_shape({n, std::size_t(1)});
  for (std::size_t s = 0; s < n; ++s) {
    for (std::size_t t = 0; t < seq_len; ++t) x(s, t, 0) = static_cast<T>(uniform01(rng));
    const auto i = static_cast<std::size_t>(uniform_index(rng, half));
    const auto j = half + static_cast<std::size_t>(uniform_index(rng, seq_len - half));
    x(s, i, 1) = T(1);
    x(s, j, 1) = T(1);
    // The sum of the two stored (rounded) values, so that the target is exact for T.
    y(s, 0) = static_cast<T>(static_cast<double>(x(s, i, 0)) + static_cast<double>(x(s, j, 0)));
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template <class T>
Dataset<T> sine_next_step(std::size_t n, std::size_t seq_len, std::uint64_t seed) {
  check_count("sine_next_step", "n", n, 1);
  check_count("sine_next_step", "seq_len", seq_len, 1);
  checked_mul("sine_next_step: n * seq_len", n, seq_len);
  std::mt19937_64 rng(seed);
  xt::xarray<T> x = xt::xarray<T>::from_shape({n, seq_len, std::size_t(1)});
  xt::xarray<T> y = xt::xarray<T>::from_shape({n, std::size_t(1)});
  for (std::size_t s = 0; s < n; ++s) {
    const double omega = uniform(rng, 0.1, 0.6);
    const double phi = uniform(rng, 0.0, 2.0 * kPi);
    for (std::size_t t = 0; t < seq_len; ++t) {
      x(s, t, 0) = static_cast<T>(std::sin(omega * static_cast<double>(t) + phi));
    }
    y(s, 0) = static_cast<T>(std::sin(omega * static_cast<double>(seq_len) + phi));
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template <class T>
Dataset<T> parity(std::size_t n, std::size_t seq_len, std::uint64_t seed) {
  check_count("parity", "n", n, 1);
  check_count("parity", "seq_len", seq_len, 1);
  checked_mul("parity: n * seq_len", n, seq_len);
  std::mt19937_64 rng(seed);
  xt::xarray<T> x = xt::xarray<T>::from_shape({n, seq_len, std::size_t(1)});
  std::vector<std::int64_t> y(n);
  for (std::size_t s = 0; s < n; ++s) {
    std::int64_t p = 0;
    for (std::size_t t = 0; t < seq_len; ++t) {
      const auto bit = static_cast<std::int64_t>(rng() >> 63);
      x(s, t, 0) = static_cast<T>(bit);
      p ^= bit;
    }
    y[s] = p;
  }
  return Dataset<T>(std::move(x), std::move(y));
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
  template Dataset<T> two_spirals<T>(std::size_t, double, std::uint64_t);                              \
  template Dataset<T> moons<T>(std::size_t, double, std::uint64_t);                                    \
  template Dataset<T> gaussian_blobs<T>(std::size_t, std::size_t, std::size_t, double, std::uint64_t); \
  template Dataset<T> adding_problem<T>(std::size_t, std::size_t, std::uint64_t);                      \
  template Dataset<T> sine_next_step<T>(std::size_t, std::size_t, std::uint64_t);                      \
  template Dataset<T> parity<T>(std::size_t, std::size_t, std::uint64_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
