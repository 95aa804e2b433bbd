#pragma once
// Loss functions with PyTorch 1.13's formulas, defaults and reductions. Each is one fused node
// whose backward is written out by hand; every sum is accumulated in double.
//
// Where we are stricter than PyTorch (each throws before anything is recorded):
//  - an empty batch (N = 0, or a 0 in d1, ..., dk) is a ValueError for cross_entropy / nll_loss
//    (PyTorch returns NaN for the mean, 0 for the sum);
//  - mse_loss needs target of exactly input's shape: a ShapeError (PyTorch warns and
//    broadcasts, which is almost always a bug such as (N, 1) against (N)).
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

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

// Class indices are std::int64_t, as PyTorch's Long targets: a flat std::vector, or a shaped
// xt::xarray<std::int64_t>. A negative index is only valid as ignore_index (default -100, as in
// PyTorch): such a target (a padded sequence position, say) contributes neither loss nor
// gradient, and Mean does not count it.
//
// Layouts, as PyTorch's: logits (N, C); unbatched (C) with one target; or (N, C, d1, ..., dk)
// (k >= 1), e.g. (N, C, T) for a sequence, with one target per position (n, d1, ..., dk).
// Row r of the targets is position r of (N, d1, ..., dk) in row-major order; its classes are
// logits[n, :, d1, ..., dk].

// cross_entropy: with p = log_softmax over the class dim, for each non-ignored position r:
//   loss_r = (1 - ε) (-p[r, t_r]) + ε / C Σ_c (-p[r, c]);   ignored positions: loss_r = 0.
// Mean divides Σ loss_r by the number of non-ignored targets (NaN with a zero gradient if every
// target is ignored, as in PyTorch 1.13); Sum adds them. Result: the per-position losses of
// shape (N, d1, ..., dk) for None ((N) for (N, C), () unbatched), else a 0-d scalar.
// This overload takes the N * d1 * ... * dk targets flat, row-major: a sequence model's
// (N, T) targets go as they are with logits (N, C, T) and with logits reshaped to (N*T, C).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& options = {});
// The same with shaped targets (I is std::int64_t; a brace list picks the overload above):
// their shape must be the logits' without the class dim 1, (N, d1, ..., dk) or (N) or (), as
// PyTorch checks; else a ShapeError naming both shapes. One relaxation: with logits (M, C) any
// targets of M elements are read row-major, so a (N, T) target batch needs no copy for logits
// reshaped to (N*T, C) (PyTorch needs target.reshape(-1) there).
template <class T, class I, class = std::enable_if_t<std::is_same<I, std::int64_t>::value>>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<I>& targets,
                     const CrossEntropyOptions& options = {});

// nll_loss: log_probs in any of cross_entropy's layouts; loss_r = -log_probs[r, t_r], 0 where
// ignored; Mean over the non-ignored targets; targets flat as for cross_entropy.
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& targets,
                Reduction reduction = Reduction::Mean, std::int64_t ignore_index = -100);

// ---- variable-length batches --------------------------------------------------------------
// PyTorch has no single op for a mean under a mask; these two cover the usual cases. For the
// mean over every real token of a padded batch, cross_entropy with ignore_index at the padded
// positions is already it. For the mean of per-sequence mean losses (each sequence weighted
// equally, whatever its length):
//   auto per_pos = tg::cross_entropy(logits_nct, targets, none);        // (N, T)
//   auto per_seq = tg::masked_mean(per_pos, tg::length_mask(lengths, T), 1);  // (N)
//   auto loss = tg::mean(per_seq);

// masked_mean: the mean of x over the elements where mask (x's shape exactly, else ShapeError)
// is true, Σ mask x / Σ mask, as x[mask].mean() in PyTorch; over all of x (result ()) or over
// `axis` (negative counts from the end; result x's shape without that axis, as
// (x * mask).sum(axis) / mask.sum(axis)). An empty selection gives NaN with a zero gradient,
// as in PyTorch. Masked-out elements are never read, so padding may hold anything (even NaN);
// their gradient is 0. d out / d x = mask / Σ mask.
template <class T>
Var<T> masked_mean(const Var<T>& x, const xt::xarray<bool>& mask);
template <class T>
Var<T> masked_mean(const Var<T>& x, const xt::xarray<bool>& mask, std::ptrdiff_t axis);

// length_mask: (N, max_len) with mask[n, t] = t < lengths[n], as
// torch.arange(max_len)[None, :] < lengths[:, None]. A length of 0 is allowed (an all-false
// row: its masked_mean is NaN); a length above max_len is a ValueError naming it.
xt::xarray<bool> length_mask(const std::vector<std::size_t>& lengths, std::size_t max_len);

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
