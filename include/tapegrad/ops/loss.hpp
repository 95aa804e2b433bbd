#pragma once
// Loss functions with PyTorch 1.13's formulas, defaults and reductions. Each is one fused node
// whose backward is written out by hand; every sum is accumulated in double.
//
// Where we are stricter than PyTorch (each throws before anything is recorded):
//  - an empty batch (N = 0) is a ValueError for cross_entropy / nll_loss (PyTorch returns NaN
//    for the mean, 0 for the sum);
//  - mse_loss needs target of exactly input's shape: a ShapeError (PyTorch warns and
//    broadcasts, which is almost always a bug such as (N, 1) against (N)).
#include <cstdint>
#include <vector>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// How per-element losses become the result: kept as they are (None), averaged (Mean: over
// the non-ignored targets for the class losses) or summed (Sum) into a 0-d scalar.
enum class Reduction { None, Mean, Sum };

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  // ε in [0, 1]: the target distribution is (1 - ε) onehot + ε / C.
  double label_smoothing = 0;
  // Targets equal to this contribute no loss and no gradient, and are not counted by Mean.
  std::int64_t ignore_index = -100;
};

// cross_entropy: logits (N, C) or unbatched (C) with one target; targets are class indices in
// [0, C) (or ignore_index). With p = log_softmax(x), for each non-ignored row n:
//   loss_n = (1 - ε) (-p[n, t_n]) + ε / C Σ_c (-p[n, c]);   ignored rows: loss_n = 0.
// Mean divides Σ loss_n by the number of non-ignored rows (NaN if every row is ignored, as in
// PyTorch). Result: shape (N) for None ( () when unbatched ), else ().
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& options = {});

// nll_loss: log_probs (N, C) or unbatched (C); loss_n = -log_probs[n, t_n], 0 where ignored;
// Mean over the non-ignored rows.
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& targets,
                Reduction reduction = Reduction::Mean, std::int64_t ignore_index = -100);

// mse_loss: (input - target)² elementwise; input and target must have the same shape.
// Both may require grad.
template <class T>
Var<T> mse_loss(const Var<T>& input, const Var<T>& target, Reduction reduction = Reduction::Mean);

// binary_cross_entropy_with_logits: for logits x and targets y of the same shape, and
// pos_weight w (broadcast against x; typically shape (C) for the last dim, 1 when absent):
//   loss = (1 - y) x + (1 + (w - 1) y) softplus(-x),   softplus(-x) = max(-x, 0) + log1p(e^-|x|)
// which without w is max(x, 0) - x y + log(1 + e^-|x|): stable for any |x|.
// Gradients flow to x and y, as in PyTorch, and also to w when it requires grad (PyTorch
// 1.13 does not implement that derivative; here it is dL/dw = Σ y softplus(-x)).
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction = Reduction::Mean);
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets, Reduction reduction,
                                        const Var<T>& pos_weight);

}  // namespace tapegrad
