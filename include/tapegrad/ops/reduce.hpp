#pragma once
// Reductions over axes: sum, mean, max, min, var (PyTorch 1.13's torch.sum / mean / amax /
// amin / var).
//
// `axes` may hold negative axes (counted from the end) and is normalized and sorted; an empty
// list reduces over all axes, as torch.sum(x, dim=[]) does. With keepdims the reduced axes
// stay as size-1 dims, so the result broadcasts against the input. A 0-d input accepts the
// axes 0 and -1 (as PyTorch does) and reduces to itself.
//
// Sums are accumulated in double for float inputs too. The backward of every reduction is a
// broadcast of the output gradient back over the reduced axes (times a local factor).
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// Sum of all elements, as a 0-d Var.
template <class T>
Var<T> sum(const Var<T>& x);
template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims = false);

// Arithmetic mean. A reduction over zero elements gives NaN (0/0), as in PyTorch.
template <class T>
Var<T> mean(const Var<T>& x);
template <class T>
Var<T> mean(const Var<T>& x, const Axes& axes, bool keepdims = false);

// Largest / smallest element (torch.amax / torch.amin; NaN propagates). The gradient is split
// evenly among the elements that tie for the extreme value: with k tied maxima each receives
// dL/dy / k (torch.amax's rule; torch.max(x, dim), which returns indices, instead sends it all
// to one index). Reducing over an axis of size 0 is a ValueError (PyTorch: IndexError).
template <class T>
Var<T> max(const Var<T>& x);
template <class T>
Var<T> max(const Var<T>& x, const Axes& axes, bool keepdims = false);
template <class T>
Var<T> min(const Var<T>& x);
template <class T>
Var<T> min(const Var<T>& x, const Axes& axes, bool keepdims = false);

// Variance over `axes` (torch.var): sum((x - mean)^2) / (n - 1) when unbiased, / n otherwise.
// Computed per reduced group in two passes (the mean first, then the squared deviations), both
// accumulated in double: exact enough for float data with a large common offset. As in
// PyTorch, an unbiased variance of one element divides 0 by 0 and gives NaN (its gradient is
// NaN too), and the variance of zero elements is NaN.
// Deviation: PyTorch 1.13's backward of torch.var(x, dim=[]) is wrong (inf); here an empty
// axes list means all axes in the backward too, like torch.var(x, dim=None).
template <class T>
Var<T> var(const Var<T>& x);  // all axes, unbiased
template <class T>
Var<T> var(const Var<T>& x, const Axes& axes, bool unbiased = true, bool keepdims = false);

}  // namespace tapegrad
