#include "tapegrad/nn/init.hpp"

#include <cmath>
#include <sstream>
#include <vector>

#include "tapegrad/core/error.hpp"

namespace tapegrad {
namespace init {

namespace {

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_finite(const char* fn, const char* what, double v) {
  if (!std::isfinite(v)) throw ValueError(std::string(fn) + ": " + what + " must be finite, got " + num(v));
}

void check_std(const char* fn, double sd) {
  if (!(sd >= 0 && std::isfinite(sd))) {
    throw ValueError(std::string(fn) + ": std must be finite and >= 0, got " + num(sd));
  }
}

// xavier_*: a negative gain would be a negative std (torch: an error from uniform_/normal_).
void check_gain(const char* fn, double gain) {
  if (!(gain >= 0 && std::isfinite(gain))) {
    throw ValueError(std::string(fn) + ": gain must be finite and >= 0, got " + num(gain));
  }
}

void check_rank2(const char* fn, const Shape& s) {
  if (s.size() < 2) {
    throw ValueError(std::string(fn) +
                     ": fan in and fan out can not be computed for a tensor with fewer than 2 "
                     "dimensions, got shape " +
                     shape_str(s));
  }
}

template <class T>
void fill_uniform(xt::xarray<T>& a, double lo, double hi, Generator& gen) {
  for (auto& v : a) v = static_cast<T>(gen.uniform(lo, hi));
}

template <class T>
void fill_normal(xt::xarray<T>& a, double mean, double sd, Generator& gen) {
  for (auto& v : a) v = static_cast<T>(gen.normal(mean, sd));
}

// In place: the thin QR of the m x n matrix `q` (row-major, m >= n) by Householder
// reflections; on return `q` holds Q (m x n, orthonormal columns) and `rdiag` R's diagonal.
void householder_qr(std::vector<double>& q, std::size_t m, std::size_t n, std::vector<double>& rdiag) {
  std::vector<double> a = q;
  std::vector<std::vector<double>> vs(n);
  rdiag.assign(n, 0.0);
  for (std::size_t k = 0; k < n; ++k) {
    std::vector<double> v(m - k);
    double norm2 = 0;
    for (std::size_t i = k; i < m; ++i) norm2 += a[i * n + k] * a[i * n + k];
    const double norm = std::sqrt(norm2);
    const double alpha = a[k * n + k] > 0 ? -norm : norm;  // R_kk, as LAPACK's geqrf
    rdiag[k] = alpha;
    for (std::size_t i = k; i < m; ++i) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    double vnorm2 = 0;
    for (double x : v) vnorm2 += x * x;
    if (vnorm2 > 0) {
      for (std::size_t j = k; j < n; ++j) {  // A[k:, j] -= 2 v (v . A[k:, j]) / (v . v)
        double dot = 0;
        for (std::size_t i = k; i < m; ++i) dot += v[i - k] * a[i * n + j];
        const double f = 2 * dot / vnorm2;
        for (std::size_t i = k; i < m; ++i) a[i * n + j] -= f * v[i - k];
      }
    }
    vs[k] = std::move(v);
  }
  // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity, last reflector first.
  std::fill(q.begin(), q.end(), 0.0);
  for (std::size_t j = 0; j < n; ++j) q[j * n + j] = 1.0;
  for (std::size_t k = n; k-- > 0;) {
    const std::vector<double>& v = vs[k];
    double vnorm2 = 0;
    for (double x : v) vnorm2 += x * x;
    if (vnorm2 == 0) continue;
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (std::size_t i = k; i < m; ++i) dot += v[i - k] * q[i * n + j];
      const double f = 2 * dot / vnorm2;
      for (std::size_t i = k; i < m; ++i) q[i * n + j] -= f * v[i - k];
    }
  }
}

// The fans, with `fn` (the caller) in the message for fewer than 2 dimensions.
Fans fans_of(const char* fn, const Shape& shape) {
  check_rank2(fn, shape);
  std::size_t receptive = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return Fans{shape[1] * receptive, shape[0] * receptive};
}

std::size_t correct_fan(const char* fn, const Shape& shape, const std::string& mode) {
  if (mode != "fan_in" && mode != "fan_out") {
    throw ValueError(std::string(fn) + ": mode '" + mode +
                     "' is not supported, please use one of fan_in, fan_out");
  }
  const Fans f = fans_of(fn, shape);
  return mode == "fan_in" ? f.fan_in : f.fan_out;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity) {
  if (nonlinearity == "leaky_relu") return calculate_gain(nonlinearity, 0.01);
  return calculate_gain(nonlinearity, 0.0);
}

double calculate_gain(const std::string& nonlinearity, double param) {
  static const char* const kLinear[] = {"linear",           "conv1d",           "conv2d",
                                        "conv3d",           "conv_transpose1d", "conv_transpose2d",
                                        "conv_transpose3d", "sigmoid"};
  for (const char* name : kLinear) {
    if (nonlinearity == name) return 1.0;
  }
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    check_finite("calculate_gain", "negative_slope", param);
    return std::sqrt(2.0 / (1 + param * param));
  }
  if (nonlinearity == "selu") return 3.0 / 4;
  throw ValueError("calculate_gain: unsupported nonlinearity '" + nonlinearity +
                   "' (one of linear, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, "
                   "conv_transpose3d, sigmoid, tanh, relu, leaky_relu, selu)");
}

Fans calculate_fan_in_and_fan_out(const Shape& shape) {
  return fans_of("calculate_fan_in_and_fan_out", shape);
}

std::size_t calculate_correct_fan(const Shape& shape, const std::string& mode) {
  return correct_fan("calculate_correct_fan", shape, mode);
}

template <class T>
xt::xarray<T>& uniform_(xt::xarray<T>& a, double lo, double hi, Generator& gen) {
  if (!(lo <= hi && std::isfinite(hi - lo))) {
    throw ValueError("uniform_: need finite a <= b, got a " + num(lo) + ", b " + num(hi));
  }
  fill_uniform(a, lo, hi, gen);
  return a;
}

template <class T>
xt::xarray<T>& normal_(xt::xarray<T>& a, double mean, double sd, Generator& gen) {
  check_finite("normal_", "mean", mean);
  check_std("normal_", sd);
  fill_normal(a, mean, sd, gen);
  return a;
}

template <class T>
xt::xarray<T>& constant_(xt::xarray<T>& a, double value) {
  a.fill(static_cast<T>(value));
  return a;
}

template <class T>
xt::xarray<T>& zeros_(xt::xarray<T>& a) {
  return constant_(a, 0.0);
}

template <class T>
xt::xarray<T>& ones_(xt::xarray<T>& a) {
  return constant_(a, 1.0);
}

template <class T>
xt::xarray<T>& eye_(xt::xarray<T>& a) {
  if (a.dimension() != 2) {
    throw ValueError("eye_: only tensors with 2 dimensions are supported, got shape " + shape_str(a.shape()));
  }
  a.fill(T(0));
  const std::size_t cols = a.shape()[1];
  for (std::size_t i = 0, n = std::min(a.shape()[0], cols); i < n; ++i) a.data()[i * cols + i] = T(1);
  return a;
}

template <class T>
xt::xarray<T>& xavier_uniform_(xt::xarray<T>& a, double gain, Generator& gen) {
  const Fans f = fans_of("xavier_uniform_", a.shape());
  check_gain("xavier_uniform_", gain);
  if (a.size() == 0) return a;
  const double sd = gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  const double bound = std::sqrt(3.0) * sd;
  fill_uniform(a, -bound, bound, gen);
  return a;
}

template <class T>
xt::xarray<T>& xavier_normal_(xt::xarray<T>& a, double gain, Generator& gen) {
  const Fans f = fans_of("xavier_normal_", a.shape());
  check_gain("xavier_normal_", gain);
  if (a.size() == 0) return a;
  const double sd = gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  fill_normal(a, 0.0, sd, gen);
  return a;
}

namespace {
// kaiming_*'s std, after every check; 0 for an empty tensor (nothing is drawn then).
double kaiming_std(const char* fn, const Shape& s, double neg_slope, const std::string& mode,
                   const std::string& nonlinearity) {
  const std::size_t fan = correct_fan(fn, s, mode);
  const double gain = calculate_gain(nonlinearity, neg_slope);
  return fan == 0 ? 0.0 : gain / std::sqrt(static_cast<double>(fan));
}
}  // namespace

template <class T>
xt::xarray<T>& kaiming_uniform_(xt::xarray<T>& a, double neg_slope, const std::string& mode,
                                const std::string& nonlinearity, Generator& gen) {
  const double sd = kaiming_std("kaiming_uniform_", a.shape(), neg_slope, mode, nonlinearity);
  if (a.size() == 0) return a;
  const double bound = std::sqrt(3.0) * sd;
  fill_uniform(a, -bound, bound, gen);
  return a;
}

template <class T>
xt::xarray<T>& kaiming_normal_(xt::xarray<T>& a, double neg_slope, const std::string& mode,
                               const std::string& nonlinearity, Generator& gen) {
  const double sd = kaiming_std("kaiming_normal_", a.shape(), neg_slope, mode, nonlinearity);
  if (a.size() == 0) return a;
  fill_normal(a, 0.0, sd, gen);
  return a;
}

template <class T>
xt::xarray<T>& orthogonal_(xt::xarray<T>& a, double gain, Generator& gen) {
  if (a.dimension() < 2) {
    throw ValueError("orthogonal_: only tensors with 2 or more dimensions are supported, got shape " +
                     shape_str(a.shape()));
  }
  check_finite("orthogonal_", "gain", gain);
  if (a.size() == 0) return a;
  const std::size_t rows = a.shape()[0], cols = a.size() / rows;
  const bool wide = rows < cols;  // QR of the transpose, as torch does
  const std::size_t m = wide ? cols : rows, n = wide ? rows : cols;
  std::vector<double> q(m * n);
  for (auto& v : q) v = gen.normal();
  std::vector<double> rdiag;
  householder_qr(q, m, n, rdiag);
  for (std::size_t j = 0; j < n; ++j) {  // q *= sign(diag(r)) (a zero counts as +1)
    if (rdiag[j] >= 0) continue;
    for (std::size_t i = 0; i < m; ++i) q[i * n + j] = -q[i * n + j];
  }
  T* out = a.data();
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = wide ? q[c * n + r] : q[r * n + c];
      out[r * cols + c] = static_cast<T>(gain * v);
    }
  }
  return a;
}

#define TAPEGRAD_INIT_INSTANTIATE(T)                                                                         \
  template xt::xarray<T>& uniform_<T>(xt::xarray<T>&, double, double, Generator&);                           \
  template xt::xarray<T>& normal_<T>(xt::xarray<T>&, double, double, Generator&);                            \
  template xt::xarray<T>& constant_<T>(xt::xarray<T>&, double);                                              \
  template xt::xarray<T>& zeros_<T>(xt::xarray<T>&);                                                         \
  template xt::xarray<T>& ones_<T>(xt::xarray<T>&);                                                          \
  template xt::xarray<T>& eye_<T>(xt::xarray<T>&);                                                           \
  template xt::xarray<T>& xavier_uniform_<T>(xt::xarray<T>&, double, Generator&);                            \
  template xt::xarray<T>& xavier_normal_<T>(xt::xarray<T>&, double, Generator&);                             \
  template xt::xarray<T>& kaiming_uniform_<T>(xt::xarray<T>&, double, const std::string&,                    \
                                              const std::string&, Generator&);                               \
  template xt::xarray<T>& kaiming_normal_<T>(xt::xarray<T>&, double, const std::string&, const std::string&, \
                                             Generator&);                                                    \
  template xt::xarray<T>& orthogonal_<T>(xt::xarray<T>&, double, Generator&);
TAPEGRAD_INIT_INSTANTIATE(float)
TAPEGRAD_INIT_INSTANTIATE(double)
#undef TAPEGRAD_INIT_INSTANTIATE

}  // namespace init
}  // namespace tapegrad
