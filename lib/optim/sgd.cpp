#include "tapegrad/optim/sgd.hpp"

namespace tapegrad {

template <class T>
SGD<T>::SGD(std::vector<Parameter<T>*> params, double lr, SGDOptions options)
    : Optimizer<T>(std::move(params), lr, "SGD"), o_(options) {
  this->check_nonnegative("SGD", "momentum value", o_.momentum);
  this->check_nonnegative("SGD", "weight_decay value", o_.weight_decay);
  if (o_.nesterov && (o_.momentum <= 0 || o_.dampening != 0)) {
    throw ValueError("SGD: Nesterov momentum requires a momentum and zero dampening (got momentum " +
                     std::to_string(o_.momentum) + ", dampening " + std::to_string(o_.dampening) + ")");
  }
}

template <class T>
void SGD<T>::update(std::size_t i, Parameter<T>& p) {
  T* w = p.value.data();
  const T* grad = p.grad.data();
  const std::size_t n = p.value.size();
  const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(o_.weight_decay);
  const T mom = static_cast<T>(o_.momentum), damp = static_cast<T>(o_.dampening);
  if (mom == T(0)) {
    for (std::size_t j = 0; j < n; ++j) w[j] -= lr * (grad[j] + wd * w[j]);
    return;
  }
  const bool first = !this->has_state(i, "momentum_buffer");
  T* buf = this->state(i, "momentum_buffer").data();
  for (std::size_t j = 0; j < n; ++j) {
    const T g = grad[j] + wd * w[j];
    buf[j] = first ? g : mom * buf[j] + (T(1) - damp) * g;
    w[j] -= lr * (o_.nesterov ? g + mom * buf[j] : buf[j]);
  }
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad
