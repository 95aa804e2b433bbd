#include "tapegrad/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

template <class T>
StepLR<T>::StepLR(Optimizer<T>& opt, std::int64_t step_size, double gamma)
    : LRScheduler<T>(opt), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0)
    throw ValueError("StepLR: step_size must be positive, got " + std::to_string(step_size));
  if (!(std::isfinite(gamma) && gamma > 0)) {
    throw ValueError("StepLR: gamma must be a positive finite number, got " + std::to_string(gamma));
  }
  this->init();
}

template <class T>
double StepLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("StepLR", epoch);
  const std::int64_t decays = epoch / step_size_;  // whole periods: PyTorch's epoch // step_size
  return this->base_lr() * std::pow(gamma_, static_cast<double>(decays));
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& opt, std::int64_t t_max, double eta_min)
    : LRScheduler<T>(opt), t_max_(t_max), eta_min_(eta_min) {
  if (t_max <= 0) throw ValueError("CosineAnnealingLR: T_max must be positive, got " + std::to_string(t_max));
  if (!(std::isfinite(eta_min) && eta_min >= 0)) {
    throw ValueError("CosineAnnealingLR: eta_min must be a finite number >= 0, got " +
                     std::to_string(eta_min));
  }
  this->init();
}

template <class T>
double CosineAnnealingLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("CosineAnnealingLR", epoch);
  const double pi = 3.14159265358979323846;
  return eta_min_ + (this->base_lr() - eta_min_) *
                        (1 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2;
}

template <class T>
LinearLR<T>::LinearLR(Optimizer<T>& opt, double start_factor, double end_factor, std::int64_t total_iters)
    : LRScheduler<T>(opt), start_(start_factor), end_(end_factor), total_(total_iters) {
  if (!(start_factor > 0 && start_factor <= 1) || !(end_factor >= 0 && end_factor <= 1)) {
    throw ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1]; got " +
                     std::to_string(start_factor) + " and " + std::to_string(end_factor));
  }
  if (total_iters <= 0)
    throw ValueError("LinearLR: total_iters must be positive, got " + std::to_string(total_iters));
  this->init();
}

template <class T>
double LinearLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("LinearLR", epoch);
  const double f = static_cast<double>(std::min(epoch, total_)) / static_cast<double>(total_);
  return this->base_lr() * (start_ + (end_ - start_) * f);
}

template class StepLR<float>;
template class StepLR<double>;
template class CosineAnnealingLR<float>;
template class CosineAnnealingLR<double>;
template class LinearLR<float>;
template class LinearLR<double>;

}  // namespace tapegrad
