#include "tapegrad/optim/rmsprop.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

template <class T>
RMSprop<T>::RMSprop(std::vector<Parameter<T>*> params, double lr, RMSpropOptions options)
    : Optimizer<T>(std::move(params), lr, "RMSprop"), options_(options) {
  this->check_nonnegative("RMSprop", "epsilon value", options_.eps);
  this->check_nonnegative("RMSprop", "momentum value", options_.momentum);
  this->check_nonnegative("RMSprop", "weight_decay value", options_.weight_decay);
  // alpha > 1 would weight the new g^2 by 1 - alpha < 0: a negative square average, sqrt NaN.
  if (!(options_.alpha >= 0 && options_.alpha <= 1)) {
    throw ValueError("RMSprop: invalid alpha value (must be in [0, 1]): " + std::to_string(options_.alpha));
  }
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
  const T mom = static_cast<T>(options_.momentum);
  for (std::size_t j = 0, n = p.value.size(); j < n; ++j) {
    const T g = grad[j] + wd * w[j];
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
