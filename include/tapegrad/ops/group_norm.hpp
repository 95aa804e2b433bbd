#pragma once
// GroupNorm as one fused tape node (torch.nn.functional.group_norm, PyTorch 1.13), with a
// hand-derived backward and LayerNorm's precision guarantees (ops/norm.hpp): statistics and
// the reductions of backward are accumulated in double totals, over values shifted by a pivot;
// a float group whose squares would leave float's range is computed in double.
#include <cstddef>
#include <vector>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// Each group's mean and BIASED variance in double, indexed n G + g (InstanceNorm1d's running
// statistics are updated from them).
struct GroupStatistics {
  std::vector<double> mean, var;
};

// GroupNorm for x of shape (N, C) or (N, C, L): the C channels are split into num_groups
// groups of C / num_groups consecutive channels, and each example's group (its C/G * L values)
// is normalized on its own:
//   y = (x - mean_{n,g}) / sqrt(var_{n,g} + eps) * weight_c + bias_c      (biased variance)
// weight and bias have shape (C), or are both undefined Vars (affine = false). An example's
// output depends on that example alone (not on the rest of its batch); num_groups = C is
// instance normalization, num_groups = 1 LayerNorm over all of (C, L) with per-channel affine.
//
// Throws ShapeError for x not 2-D/3-D or with an empty dimension (PyTorch returns an empty
// output for N = 0: we refuse it, as BatchNorm1d does), and for weight/bias not (C);
// ValueError for num_groups = 0 or not dividing C, for eps negative, NaN or infinite, for only
// one of weight/bias, and -- as PyTorch's F.group_norm -- when N * C/G * L = 1 ("Expected more
// than 1 value per channel", PyTorch's wording). `stats`, when non-null, receives the group
// statistics; it is untouched when the call throws.
template <class T>
Var<T> group_norm(const Var<T>& x, std::size_t num_groups, const Var<T>& weight, const Var<T>& bias,
                  double eps = 1e-5, GroupStatistics* stats = nullptr);

}  // namespace tapegrad
