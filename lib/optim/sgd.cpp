#include "tapegrad/optim/sgd.hpp"

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

}  // namespace

template <class T>
SGD<T>::SGD(std::vector<Parameter<T>*> params, double lr, SGDOptions options)
    : Optimizer<T>(std::move(params), lr, "SGD"), options_(options) {
  this->check_nonnegative("SGD", "momentum value", options_.momentum);
  this->check_nonnegative("SGD", "weight_decay value", options_.weight_decay);
  if (!(options_.dampening >= 0 && options_.dampening <= 1)) {
    throw ValueError("SGD: invalid dampening value (must be in [0, 1]): " +
                     std::to_string(options_.dampening));
  }
  if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0)) {
    throw ValueError("SGD: Nesterov momentum requires a momentum and zero dampening (got momentum " +
                     std::to_string(options_.momentum) + ", dampening " + std::to_string(options_.dampening) +
                     ")");
  }
}

template <class T>
void SGD<T>::update(std::size_t i, Parameter<T>& p) {
  T* w = p.value.data();
  const T* grad = p.grad().data();
  const std::size_t n = p.value.size();
  const T lr = static_cast<T>(this->lr()), wd = static_cast<T>(options_.weight_decay);
  const T mom = static_cast<T>(options_.momentum), damp = static_cast<T>(options_.dampening);
  if (mom == T(0)) {
    sgd_plain(w, grad, n, lr, wd);
    return;
  }
  const bool first = !this->has_state(i, "momentum_buffer");
  T* buf = this->state(i, "momentum_buffer").data();
  for (std::size_t j = 0; j < n; ++j) {
    const T g = grad[j] + wd * w[j];
    buf[j] = first ? g : mom * buf[j] + (T(1) - damp) * g;
    w[j] -= lr * (options_.nesterov ? g + mom * buf[j] : buf[j]);
  }
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad
