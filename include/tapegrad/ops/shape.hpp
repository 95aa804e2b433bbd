#pragma once
// Shape ops: reshaping, transposing, slicing, indexing, joining and splitting (PyTorch 1.13
// semantics). Every op returns a new Var holding a copy of the data (tapegrad has no views);
// the backward of each scatters the gradient back to where the elements came from.
//
// Axes may be negative (counted from the end). An axis out of range is a ValueError naming
// the op, the axis and the number of dims; incompatible shapes are a ShapeError naming them.
#include <cstdint>
#include <limits>
#include <vector>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// A `stop` for slice() meaning "to the end of the axis" (Python's x[a:]).
constexpr std::ptrdiff_t kSliceEnd = std::numeric_limits<std::ptrdiff_t>::max();

// ---- same elements, new shape ----
// At most one entry may be -1: it is inferred from the number of elements.
template <class T>
Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& shape);
// Merges axes start_axis..end_axis (inclusive) into one; a 0-d input becomes shape (1).
template <class T>
Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_axis = 0, std::ptrdiff_t end_axis = -1);
// Removes `axis` if its size is 1; as in PyTorch, a larger axis is left alone (no error).
template <class T>
Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis);
// Removes every size-1 axis.
template <class T>
Var<T> squeeze(const Var<T>& x);
// Inserts a size-1 axis at `axis` (-ndim-1 <= axis <= ndim).
template <class T>
Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t axis);

// ---- reordering axes ----
template <class T>
Var<T> transpose(const Var<T>& x, std::ptrdiff_t d0, std::ptrdiff_t d1);
// Output axis j is input axis dims[j]; dims must be a permutation of the axes.
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<std::ptrdiff_t>& dims);

// ---- picking elements along an axis ----
// x[..., start:stop:step, ...] with Python's rules: negative start/stop count from the end,
// out-of-range ones are clamped, stop <= start gives an empty axis. step >= 1.
template <class T>
Var<T> slice(const Var<T>& x, std::ptrdiff_t axis, std::ptrdiff_t start, std::ptrdiff_t stop,
             std::ptrdiff_t step = 1);
// x[..., index, ...]: drops the axis. Negative index counts from the end.
template <class T>
Var<T> select(const Var<T>& x, std::ptrdiff_t axis, std::ptrdiff_t index);
// The entries `indices` along `axis` (0 <= index < size, as torch.index_select; repeats are
// allowed and their gradients add up).
template <class T>
Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const std::vector<std::int64_t>& indices);

// ---- joining and splitting ----
// Joins along an existing axis; all other dims must agree (torch.cat). PyTorch 1.13 also
// skips legacy 1-d empty tensors of shape (0) whatever the other shapes; tapegrad does not.
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis = 0);
// Joins equal-shaped Vars along a new axis (-ndim-1 <= axis <= ndim).
template <class T>
Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis = 0);
// torch.split: pieces of split_size along axis, the last one possibly smaller (one piece,
// empty, for an empty axis). split_size 0 is allowed only for an empty axis. Note that
// split(x, {n}) with a one-element braced list calls this overload.
template <class T>
std::vector<Var<T>> split(const Var<T>& x, std::size_t split_size, std::ptrdiff_t axis = 0);
// Pieces of the given sizes, which must sum to the size of the axis.
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis = 0);

}  // namespace tapegrad
