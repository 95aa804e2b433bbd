#pragma once
// GroupNorm module (torch.nn.GroupNorm, PyTorch 1.13). The arithmetic is the fused op of
// ops/group_norm.hpp; the module holds weight and bias.
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"
#include "tapegrad/ops/group_norm.hpp"

namespace tapegrad {

// torch.nn.GroupNorm's: eps = 1e-5, affine = true (the option pieces: nn/norm.hpp).
class GroupNormOptions : public EpsOption<GroupNormOptions>, public AffineOption<GroupNormOptions, true> {};

// torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True) for input (N, C) or
// (N, C, L) with C = num_channels: each example's num_groups groups of C / num_groups
// consecutive channels are normalized on their own (biased variance), then scaled and
// shifted per channel (weight = 1, bias = 0 at init, shape (C)). The same in training and
// eval mode; no running statistics. Deliberate differences: inputs of rank > 3 and empty
// inputs are refused (ShapeError; PyTorch accepts (N, C, *) and returns an empty output for
// N = 0). The constructor throws ValueError when num_groups does not divide num_channels
// (PyTorch's message), for zero sizes or a bad eps.
template <class T>
class GroupNorm : public Module<T> {
 public:
  GroupNorm(std::size_t num_groups, std::size_t num_channels, GroupNormOptions options = {});
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  const GroupNormOptions& options() const { return options_; }

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;

 private:
  std::size_t groups_, c_;
  GroupNormOptions options_;
};

extern template class GroupNorm<float>;
extern template class GroupNorm<double>;

}  // namespace tapegrad
