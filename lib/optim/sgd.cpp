#include "tapegrad/optim/sgd.hpp"

#include <cmath>
#include <string>

#include "tapegrad/core/error.hpp"
#include "../core/simd.hpp"

namespace tapegrad {

namespace {

// The plain update w -= lr (g + wd w), the hot loop of a small model's step (a third of a
// batch-1 MLP step: it streams every weight and grad). Compiled for SSE2 and AVX2.
template <class T>
TAPEGRAD_ALWAYS_INLINE void plain_update(T* w, const T* g, std::size_t n, T lr, T wd) {
  if (wd == T(0)) {
    for (std::size_t j = 0; j < n; ++j) w[j] -= lr * g[j];
  } else {
    for (std::size_t j = 0; j < n; ++j) w[j] -= lr * (g[j] + wd * w[j]);
  }
}
TAPEGRAD_SIMD_CLONES void sgd_plain(float* w, const float* g, std::size_t n, float lr, float wd) {
  plain_update(w, g, n, lr, wd);
}
TAPEGRAD_SIMD_CLONES void sgd_plain(double* w, const double* g, std::size_t n, double lr, double wd) {
  plain_update(w, g, n, lr, wd);
}

void check_sgd(const SGDOptions& o) {
  const auto nonnegative = [](const char* what, double v) {
    if (!(v >= 0 && std::isfinite(v)))
      throw ValueError(std::string("SGD: invalid ") + what + ": " + std::to_string(v));
  };
  nonnegative("momentum value", o.momentum);
  nonnegative("weight_decay value", o.weight_decay);
  if (!(o.dampening >= 0 && o.dampening <= 1)) {
    throw ValueError("SGD: invalid dampening value (must be in [0, 1]): " + std::to_string(o.dampening));
  }
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
    throw ValueError("SGD: Nesterov momentum requires a momentum and zero dampening (got momentum " +
                     std::to_string(o.momentum) + ", dampening " + std::to_string(o.dampening) + ")");
  }
}

}  // namespace

template <class T>
SGD<T>::SGD(std::vector<Parameter<T>*> params, double lr, SGDOptions options)
    : Optimizer<T>(std::move(params), lr, "SGD"), options_(options) {
  check_sgd(options_);
}

template <class T>
Hyperparameters SGD<T>::options() const {
  return {{"momentum", options_.momentum},
          {"dampening", options_.dampening},
          {"weight_decay", options_.weight_decay},
          {"nesterov", options_.nesterov ? 1.0 : 0.0},
          {"maximize", options_.maximize ? 1.0 : 0.0}};
}

template <class T>
void SGD<T>::set_options(const Hyperparameters& values) {
  SGDOptions o = options_;
  this->read_option(values, "momentum", o.momentum);
  this->read_option(values, "dampening", o.dampening);
  this->read_option(values, "weight_decay", o.weight_decay);
  this->read_flag(values, "nesterov", o.nesterov);
  this->read_flag(values, "maximize", o.maximize);
  check_sgd(o);
  options_ = o;
}

template <class T>
void SGD<T>::update(std::size_t i, Parameter<T>& p) {
  T* w = p.value.data();
  const T* grad = p.grad().data();
  const std::size_t n = p.value.size();
  const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options_.weight_decay);
  const T mom = static_cast<T>(options_.momentum), damp = static_cast<T>(options_.dampening);
  const T sign = options_.maximize ? T(-1) : T(1);
  if (mom == T(0) && !options_.maximize) {
    sgd_plain(w, grad, n, lr, wd);
    return;
  }
  if (mom == T(0)) {  // maximize without momentum: p -= lr (-grad + wd p)
    for (std::size_t j = 0; j < n; ++j) w[j] -= lr * (sign * grad[j] + wd * w[j]);
    return;
  }
  const bool first = !this->has_state(i, "momentum_buffer");
  T* buf = this->state(i, "momentum_buffer").data();
  for (std::size_t j = 0; j < n; ++j) {
    const T g = sign * grad[j] + wd * w[j];
    buf[j] = first ? g : mom * buf[j] + (T(1) - damp) * g;
    w[j] -= lr * (options_.nesterov ? g + mom * buf[j] : buf[j]);
  }
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad
