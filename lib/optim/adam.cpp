#include "tapegrad/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {
void check_adam(const char* name, const AdamOptions& o) {
  if (!(o.eps >= 0 && std::isfinite(o.eps)))
    throw ValueError(std::string(name) + ": invalid epsilon value: " + std::to_string(o.eps));
  if (!(o.beta1 >= 0 && o.beta1 < 1)) {
    throw ValueError(std::string(name) + ": invalid beta parameter at index 0: " + std::to_string(o.beta1));
  }
  if (!(o.beta2 >= 0 && o.beta2 < 1)) {
    throw ValueError(std::string(name) + ": invalid beta parameter at index 1: " + std::to_string(o.beta2));
  }
  if (!(o.weight_decay >= 0 && std::isfinite(o.weight_decay))) {
    throw ValueError(std::string(name) + ": invalid weight_decay value: " + std::to_string(o.weight_decay));
  }
}
}  // namespace

template <class T>
Adam<T>::Adam(std::vector<Parameter<T>*> params, double lr, AdamOptions options)
    : Adam(std::move(params), lr, options, false, "Adam") {}

template <class T>
Adam<T>::Adam(std::vector<Parameter<T>*> params, double lr, AdamOptions options, bool decoupled,
              const char* name)
    : Optimizer<T>(std::move(params), lr, name), options_(options), decoupled_(decoupled) {
  check_adam(name, options_);
}

template <class T>
AdamW<T>::AdamW(std::vector<Parameter<T>*> params, double lr, AdamWOptions options)
    : Adam<T>(std::move(params), lr, options, true, "AdamW") {}

template <class T>
Hyperparameters Adam<T>::options() const {
  return {{"beta1", options_.beta1},
          {"beta2", options_.beta2},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay},
          {"amsgrad", options_.amsgrad ? 1.0 : 0.0},
          {"maximize", options_.maximize ? 1.0 : 0.0}};
}

template <class T>
void Adam<T>::set_options(const Hyperparameters& values) {
  AdamOptions o = options_;
  this->read_option(values, "beta1", o.beta1);
  this->read_option(values, "beta2", o.beta2);
  this->read_option(values, "eps", o.eps);
  this->read_option(values, "weight_decay", o.weight_decay);
  this->read_flag(values, "amsgrad", o.amsgrad);
  this->read_flag(values, "maximize", o.maximize);
  check_adam(this->name(), o);
  options_ = o;
}

template <class T>
void Adam<T>::update(std::size_t i, Parameter<T>& p) {
  T& step = this->state(i, "step")();
  step += T(1);
  T* m = this->state(i, "exp_avg").data();
  T* v = this->state(i, "exp_avg_sq").data();
  T* vmax = options_.amsgrad ? this->state(i, "max_exp_avg_sq").data() : nullptr;
  T* w = p.value.data();
  const T* grad = p.grad().data();
  const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options_.weight_decay);
  const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2),
          eps = static_cast<T>(options_.eps);
  const T bc1 = T(1) - std::pow(b1, step);
  const T bc2_sqrt = std::sqrt(T(1) - std::pow(b2, step));
  const T step_size = lr / bc1, sign = options_.maximize ? T(-1) : T(1);
  for (std::size_t j = 0, n = p.value.size(); j < n; ++j) {
    T g = sign * grad[j];
    if (decoupled_)
      w[j] *= T(1) - lr * wd;
    else
      g += wd * w[j];
    m[j] = b1 * m[j] + (T(1) - b1) * g;
    v[j] = b2 * v[j] + (T(1) - b2) * g * g;
    T second = v[j];
    if (vmax) second = vmax[j] = std::max(vmax[j], v[j]);
    w[j] -= step_size * m[j] / (std::sqrt(second) / bc2_sqrt + eps);
  }
}

template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

}  // namespace tapegrad
