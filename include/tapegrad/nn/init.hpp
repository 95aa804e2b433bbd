#pragma once
// torch.nn.init: fill a weight in place with PyTorch 1.13's schemes, seeded by a Generator.
//
//   tg::Generator gen(0);
//   tg::init::kaiming_uniform_(layer.weight->value, 0.0, "fan_in", "relu", gen);
//   tg::init::orthogonal_(*lstm.weight_hh[0], 1.0, gen);  // a Parameter: its version is bumped
//   tg::init::zeros_(*layer.bias);
//
// Every function takes an xt::xarray<float|double>& or a Parameter& (then it bumps the
// parameter's version: a tape that bound the old value refuses to backward through it, as
// PyTorch does after an in-place change) and returns what it was given. The names, arguments,
// defaults and formulas are torch.nn.init's (1.13):
//   fans (calculate_fan_in_and_fan_out): fan_in = size(1) * receptive field, fan_out = size(0) *
//     receptive field, the receptive field being the product of the sizes after the second;
//   xavier_*: std = gain * sqrt(2 / (fan_in + fan_out)), uniform bound sqrt(3) * std;
//   kaiming_*: std = calculate_gain(nonlinearity, a) / sqrt(fan), fan chosen by mode ("fan_in"
//     or "fan_out"), uniform bound sqrt(3) * std;
//   orthogonal_: the Q of a QR decomposition of an N(0, 1) matrix of size(0) rows and
//     numel / size(0) columns (transposed when it is wide), its columns' signs fixed by R's
//     diagonal so that Q is uniformly (Haar) distributed, times gain.
// The values are drawn from `gen` (tapegrad's own stream, not torch's): the same seed gives the
// same values on every platform, and the distributions are PyTorch's, not its numbers.
//
// Bad input is refused before anything is written (array and generator unchanged): fewer than
// 2 dimensions for the fan-based schemes and orthogonal_ (torch: "Fan in and fan out can not be
// computed for tensor with fewer than 2 dimensions") and for eye_ anything but 2 dimensions, an
// unknown nonlinearity or mode, lo > hi, a negative or non-finite std, a non-finite gain (for
// xavier_* a negative one too): each a ValueError naming the value. Deliberate differences: an empty tensor is returned unchanged
// by every function (torch warns for kaiming_* and divides by zero in xavier_*); calculate_gain's
// `param` is a double (torch also accepts a bool or None: use the one-argument overload for None).
#include <cstddef>
#include <string>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/random.hpp"
#include "tapegrad/core/shape.hpp"

namespace tapegrad {
namespace init {

// torch.nn.init.calculate_gain: linear, conv1d/2d/3d, conv_transpose1d/2d/3d and sigmoid 1;
// tanh 5/3; relu sqrt(2); leaky_relu sqrt(2 / (1 + slope^2)) (slope `param`, 0.01 without one);
// selu 3/4. Anything else is a ValueError naming it.
double calculate_gain(const std::string& nonlinearity);
double calculate_gain(const std::string& nonlinearity, double param);

struct Fans {
  std::size_t fan_in = 0;
  std::size_t fan_out = 0;
};
// torch.nn.init._calculate_fan_in_and_fan_out; ValueError for fewer than 2 dimensions.
Fans calculate_fan_in_and_fan_out(const Shape& shape);
// The fan kaiming_* use: mode "fan_in" or "fan_out" (else a ValueError naming it).
std::size_t calculate_correct_fan(const Shape& shape, const std::string& mode);

template <class T>
xt::xarray<T>& uniform_(xt::xarray<T>& a, double lo = 0.0, double hi = 1.0,
                        Generator& gen = default_generator());
template <class T>
xt::xarray<T>& normal_(xt::xarray<T>& a, double mean = 0.0, double stddev = 1.0,
                       Generator& gen = default_generator());
template <class T>
xt::xarray<T>& constant_(xt::xarray<T>& a, double value);
template <class T>
xt::xarray<T>& zeros_(xt::xarray<T>& a);
template <class T>
xt::xarray<T>& ones_(xt::xarray<T>& a);
// The identity in a 2-D array (ones on the main diagonal of a non-square one too).
template <class T>
xt::xarray<T>& eye_(xt::xarray<T>& a);
template <class T>
xt::xarray<T>& xavier_uniform_(xt::xarray<T>& a, double gain = 1.0, Generator& gen = default_generator());
template <class T>
xt::xarray<T>& xavier_normal_(xt::xarray<T>& a, double gain = 1.0, Generator& gen = default_generator());
template <class T>
xt::xarray<T>& kaiming_uniform_(xt::xarray<T>& a, double neg_slope = 0.0, const std::string& mode = "fan_in",
                                const std::string& nonlinearity = "leaky_relu",
                                Generator& gen = default_generator());
template <class T>
xt::xarray<T>& kaiming_normal_(xt::xarray<T>& a, double neg_slope = 0.0, const std::string& mode = "fan_in",
                               const std::string& nonlinearity = "leaky_relu",
                               Generator& gen = default_generator());
template <class T>
xt::xarray<T>& orthogonal_(xt::xarray<T>& a, double gain = 1.0, Generator& gen = default_generator());

// ---- the same on a Parameter: fills p.value, bumps p's version, returns p ----
namespace detail {
template <class T, class Fill>
Parameter<T>& fill(Parameter<T>& p, Fill&& fill_value) {
  fill_value(p.value);
  p.bump();  // tapes that saved the old value see that it changed
  return p;
}
}  // namespace detail
template <class T>
Parameter<T>& uniform_(Parameter<T>& p, double lo = 0.0, double hi = 1.0,
                       Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { uniform_(v, lo, hi, gen); });
}
template <class T>
Parameter<T>& normal_(Parameter<T>& p, double mean = 0.0, double stddev = 1.0,
                      Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { normal_(v, mean, stddev, gen); });
}
template <class T>
Parameter<T>& constant_(Parameter<T>& p, double value) {
  return detail::fill(p, [&](xt::xarray<T>& v) { constant_(v, value); });
}
template <class T>
Parameter<T>& zeros_(Parameter<T>& p) {
  return constant_(p, 0.0);
}
template <class T>
Parameter<T>& ones_(Parameter<T>& p) {
  return constant_(p, 1.0);
}
template <class T>
Parameter<T>& eye_(Parameter<T>& p) {
  return detail::fill(p, [&](xt::xarray<T>& v) { eye_(v); });
}
template <class T>
Parameter<T>& xavier_uniform_(Parameter<T>& p, double gain = 1.0, Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { xavier_uniform_(v, gain, gen); });
}
template <class T>
Parameter<T>& xavier_normal_(Parameter<T>& p, double gain = 1.0, Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { xavier_normal_(v, gain, gen); });
}
template <class T>
Parameter<T>& kaiming_uniform_(Parameter<T>& p, double neg_slope = 0.0, const std::string& mode = "fan_in",
                               const std::string& nonlinearity = "leaky_relu",
                               Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { kaiming_uniform_(v, neg_slope, mode, nonlinearity, gen); });
}
template <class T>
Parameter<T>& kaiming_normal_(Parameter<T>& p, double neg_slope = 0.0, const std::string& mode = "fan_in",
                              const std::string& nonlinearity = "leaky_relu",
                              Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { kaiming_normal_(v, neg_slope, mode, nonlinearity, gen); });
}
template <class T>
Parameter<T>& orthogonal_(Parameter<T>& p, double gain = 1.0, Generator& gen = default_generator()) {
  return detail::fill(p, [&](xt::xarray<T>& v) { orthogonal_(v, gain, gen); });
}

#define TAPEGRAD_INIT_EXTERN(T)                                                                  \
  extern template xt::xarray<T>& uniform_<T>(xt::xarray<T>&, double, double, Generator&);        \
  extern template xt::xarray<T>& normal_<T>(xt::xarray<T>&, double, double, Generator&);         \
  extern template xt::xarray<T>& constant_<T>(xt::xarray<T>&, double);                           \
  extern template xt::xarray<T>& zeros_<T>(xt::xarray<T>&);                                      \
  extern template xt::xarray<T>& ones_<T>(xt::xarray<T>&);                                       \
  extern template xt::xarray<T>& eye_<T>(xt::xarray<T>&);                                        \
  extern template xt::xarray<T>& xavier_uniform_<T>(xt::xarray<T>&, double, Generator&);         \
  extern template xt::xarray<T>& xavier_normal_<T>(xt::xarray<T>&, double, Generator&);          \
  extern template xt::xarray<T>& kaiming_uniform_<T>(xt::xarray<T>&, double, const std::string&, \
                                                     const std::string&, Generator&);            \
  extern template xt::xarray<T>& kaiming_normal_<T>(xt::xarray<T>&, double, const std::string&,  \
                                                    const std::string&, Generator&);             \
  extern template xt::xarray<T>& orthogonal_<T>(xt::xarray<T>&, double, Generator&);
TAPEGRAD_INIT_EXTERN(float)
TAPEGRAD_INIT_EXTERN(double)
#undef TAPEGRAD_INIT_EXTERN

}  // namespace init
}  // namespace tapegrad
