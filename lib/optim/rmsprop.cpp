#include "tapegrad/optim/rmsprop.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

template <class T>
void RMSprop<T>::check(const RMSpropOptions& o) const {
  this->check_nonnegative("RMSprop", "epsilon value", o.eps);
  this->check_nonnegative("RMSprop", "momentum value", o.momentum);
  this->check_nonnegative("RMSprop", "weight_decay value", o.weight_decay);
  // alpha > 1 would weight the new g^2 by 1 - alpha < 0: a negative square average, sqrt NaN.
  if (!(o.alpha >= 0 && o.alpha <= 1)) {
    throw ValueError("RMSprop: invalid alpha value (must be in [0, 1]): " + std::to_string(o.alpha));
  }
}

template <class T>
RMSprop<T>::RMSprop(std::vector<Parameter<T>*> params, double lr, RMSpropOptions options)
    : Optimizer<T>(std::move(params), lr, "RMSprop"), options_(options) {
  check(options_);
}

template <class T>
Hyperparameters RMSprop<T>::options() const {
  return {{"alpha", options_.alpha},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay},
          {"momentum", options_.momentum},
          {"centered", options_.centered ? 1.0 : 0.0},
          {"maximize", options_.maximize ? 1.0 : 0.0}};
}

template <class T>
void RMSprop<T>::set_options(const Hyperparameters& values) {
  RMSpropOptions o = options_;
  this->read_option(values, "alpha", o.alpha);
  this->read_option(values, "eps", o.eps);
  this->read_option(values, "weight_decay", o.weight_decay);
  this->read_option(values, "momentum", o.momentum);
  this->read_flag(values, "centered", o.centered);
  this->read_flag(values, "maximize", o.maximize);
  check(o);
  options_ = o;
}

template <class T>
void RMSprop<T>::update(std::size_t i, Parameter<T>& p) {
  this->state(i, "step")() += T(1);
  T* sq = this->state(i, "square_avg").data();
  T* avg = options_.centered ? this->state(i, "grad_avg").data() : nullptr;
  T* buf = options_.momentum > 0 ? this->state(i, "momentum_buffer").data() : nullptr;
  T* w = p.value.data();
  const T* grad = p.grad().data();
  const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options_.weight_decay);
  const T alpha = static_cast<T>(options_.alpha), eps = static_cast<T>(options_.eps);
  const T mom = static_cast<T>(options_.momentum), sign = options_.maximize ? T(-1) : T(1);
  for (std::size_t j = 0, n = p.value.size(); j < n; ++j) {
    const T g = sign * grad[j] + wd * w[j];
    sq[j] = alpha * sq[j] + (T(1) - alpha) * g * g;
    T denom;
    if (avg) {
      avg[j] = alpha * avg[j] + (T(1) - alpha) * g;
      // s - a² is a variance, >= 0 in exact arithmetic; rounded it can come out slightly
      // negative (a constant float gradient does so after ~1,200 steps) and sqrt gives NaN.
      // PyTorch has the same NaN; clamping at 0 differs from it only there.
      denom = std::sqrt(std::max(sq[j] - avg[j] * avg[j], T(0))) + eps;
    } else {
      denom = std::sqrt(sq[j]) + eps;
    }
    if (buf) {
      buf[j] = mom * buf[j] + g / denom;
      w[j] -= lr * buf[j];
    } else {
      w[j] -= lr * g / denom;
    }
  }
}

template class RMSprop<float>;
template class RMSprop<double>;

}  // namespace tapegrad
