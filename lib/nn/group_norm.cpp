#include "tapegrad/nn/group_norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include <string>

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"

namespace tapegrad {

template <class T>
GroupNorm<T>::GroupNorm(std::size_t num_groups, std::size_t num_channels, GroupNormOptions options)
    : groups_(num_groups), c_(num_channels), options_(options) {
  checked_size("GroupNorm: num_groups", num_groups);
  checked_size("GroupNorm: num_channels", num_channels);
  if (num_groups == 0 || num_channels == 0) {
    throw ValueError("GroupNorm: num_groups and num_channels must be positive, got num_groups=" +
                     std::to_string(num_groups) + ", num_channels=" + std::to_string(num_channels));
  }
  if (num_channels % num_groups != 0) {
    throw ValueError("GroupNorm: num_channels must be divisible by num_groups, got num_channels=" +
                     std::to_string(num_channels) + ", num_groups=" + std::to_string(num_groups));
  }
  detail::check_eps("GroupNorm", options_.eps());
  if (options_.affine()) this->register_affine(Shape{num_channels}, weight, bias);
}

template <class T>
Var<T> GroupNorm<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  detail::check_channel_input("GroupNorm", xs, c_);
  return group_norm(x, groups_, weight ? t.param(*weight) : Var<T>(), bias ? t.param(*bias) : Var<T>(),
                    options_.eps());
}

template <class T>
std::string GroupNorm<T>::extra_repr() const {
  return std::to_string(groups_) + ", " + std::to_string(c_) + ", eps=" + python_float(options_.eps()) +
         ", affine=" + (options_.affine() ? "True" : "False");
}

template class GroupNorm<float>;
template class GroupNorm<double>;

}  // namespace tapegrad
