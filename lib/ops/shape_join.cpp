// Shape ops over lists of Vars: concat and stack (joining), split (one Var into pieces).
// The ops on one Var: shape.cpp.
#include "tapegrad/ops/shape.hpp"

#include <algorithm>
#include <string>

#include "shape_common.hpp"

namespace tapegrad {

namespace {

enum class JoinInt : std::size_t { outer, count };

// ---- concat / stack ----
// Seen as `outer` rows, the output's row o is input 0's row o, then input 1's row o, ...
// (input k's rows are its size / outer contiguous elements).
//   y[o, off_k + j] = x_k[o, j],   dL/dx_k[o, j] = dL/dy[o, off_k + j].   int JoinInt::outer.
template <class T>
Var<T> join(const char* op, const std::vector<Var<T>>& xs, const Shape& out_shape, std::size_t outer) {
  Tape<T>& t = xs[0].tape();
  auto r = t.record(op, xs);
  r.set_int(JoinInt::outer, static_cast<std::ptrdiff_t>(outer));
  T* po = r.out(out_shape).data();
  // An empty output has nothing to copy, though `outer` may be huge: skip the loop over it.
  if (outer > 0 && numel(out_shape) > 0) {
    const std::size_t row = numel(out_shape) / outer;
    std::size_t off = 0;
    for (const auto& x : xs) {
      const xt::xarray<T>& v = t.value(x);
      const std::size_t chunk = v.size() / outer;
      for (std::size_t o = 0; o < outer; ++o) {
        std::copy(v.data() + o * chunk, v.data() + (o + 1) * chunk, po + o * row + off);
      }
      off += chunk;
    }
  }
  return r.finish([](BackwardCtx<T>& c) {
    const auto n_outer = static_cast<std::size_t>(c.int_at(JoinInt::outer));
    if (n_outer == 0 || c.grad().size() == 0) {
      for (std::size_t k = 0; k < c.num_inputs(); ++k) {
        if (c.needs_grad(k)) c.input_grad(k);  // empty inputs still get their (zero) gradient
      }
      return;
    }
    const std::size_t row = c.grad().size() / n_outer;
    const T* g = c.grad().data();
    std::size_t off = 0;
    for (std::size_t k = 0; k < c.num_inputs(); ++k) {
      const std::size_t chunk = c.input(k).size() / n_outer;
      if (c.needs_grad(k)) {
        T* gx = c.input_grad(k).data();
        for (std::size_t o = 0; o < n_outer; ++o) {
          for (std::size_t j = 0; j < chunk; ++j) gx[o * chunk + j] += g[o * row + off + j];
        }
      }
      off += chunk;
    }
  });
}

// The checks record() would make, done before the shapes of a list are read, with the
// position in the list in the message.
template <class T>
Tape<T>& check_list(const char* op, const std::vector<Var<T>>& xs) {
  if (xs.empty()) throw ValueError(std::string(op) + ": needs at least one Var; got an empty list");
  return Tape<T>::of(op, xs);
}

// Splits x into pieces of the given sizes along `axis` (validated: they sum to its size).
template <class T>
std::vector<Var<T>> split_checked(const Var<T>& x, std::size_t axis, const std::vector<std::size_t>& sizes) {
  std::vector<Var<T>> pieces;
  pieces.reserve(sizes.size());
  std::size_t off = 0;
  for (auto size : sizes) {
    Shape s = x.shape();
    s[axis] = size;
    pieces.push_back(gather(
        "split", x, axis, size, [off](std::size_t k) { return off + k; }, s));
    off += size;
  }
  return pieces;
}

}  // namespace

// concat: y = [x_0, x_1, ...] along `axis`;  dL/dx_k = the slice of dL/dy that x_k filled.
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis) {
  Tape<T>& t = check_list("concat", xs);
  const Shape& s0 = t.shape(xs[0]);
  if (s0.empty()) {
    throw ShapeError("concat: input 0 is 0-d (shape ()); 0-d Vars cannot be concatenated, use stack");
  }
  const std::size_t a = normalize_axis("concat", axis, s0.size());
  checked_numel("concat", s0);
  Shape out = s0;
  for (std::size_t k = 1; k < xs.size(); ++k) {
    const Shape& s = t.shape(xs[k]);
    if (s.size() != s0.size()) {
      throw ShapeError("concat: all inputs must have the same number of dims; input 0 has shape " +
                       shape_str(s0) + " but input " + std::to_string(k) + " has shape " + shape_str(s));
    }
    for (std::size_t d = 0; d < s.size(); ++d) {
      if (d != a && s[d] != s0[d]) {
        throw ShapeError("concat: input 0 has shape " + shape_str(s0) + " but input " + std::to_string(k) +
                         " has shape " + shape_str(s) + ": they differ in dim " + std::to_string(d) +
                         ", and only the concat axis " + std::to_string(a) + " may differ");
      }
    }
    out[a] = checked_add("concat: the sizes of the concat axis", out[a], s[a]);
  }
  checked_numel("concat", out);
  return join("concat", xs, out, dims_product(s0, 0, a));
}

// stack: y[..., k, ...] = x_k along a new axis;  dL/dx_k = dL/dy[..., k, ...].
template <class T>
Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis) {
  Tape<T>& t = check_list("stack", xs);
  const Shape& s0 = t.shape(xs[0]);
  const std::size_t a = normalize_axis("stack", axis, s0.size() + 1);
  for (std::size_t k = 1; k < xs.size(); ++k) {
    const Shape& s = t.shape(xs[k]);
    if (s != s0) {
      throw ShapeError("stack: all inputs must have the same shape; input 0 has shape " + shape_str(s0) +
                       " but input " + std::to_string(k) + " has shape " + shape_str(s));
    }
  }
  const Shape out = insert_axis(s0, a, xs.size());
  checked_numel("stack", out);
  return join("stack", xs, out, dims_product(s0, 0, a));
}

// split into pieces of split_size (torch.split with an int).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, std::size_t split_size, std::ptrdiff_t axis) {
  const Shape& in = Tape<T>::of("split", {x}).shape(x);
  checked_numel("split", in);
  const std::size_t a = normalize_axis("split", axis, in.size());
  const std::size_t n = in[a];
  checked_size("split: split_size", split_size);
  if (split_size == 0 && n > 0) {
    throw ValueError("split: split_size can be 0 only for an axis of size 0; axis " + std::to_string(axis) +
                     " of input shape " + shape_str(in) + " has size " + std::to_string(n));
  }
  // ceil(n / split_size) without forming n + split_size - 1, which can overflow.
  const std::size_t pieces =
      split_size == 0 ? 1 : std::max<std::size_t>(n / split_size + (n % split_size != 0 ? 1 : 0), 1);
  std::vector<std::size_t> sizes(pieces, split_size);
  sizes.back() = n - split_size * (pieces - 1);
  return split_checked(x, a, sizes);
}

// split into pieces of the given sizes (torch.split with a list).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis) {
  const Shape& in = Tape<T>::of("split", {x}).shape(x);
  checked_numel("split", in);
  const std::size_t a = normalize_axis("split", axis, in.size());
  std::string list = "[";
  for (std::size_t k = 0; k < sizes.size(); ++k) list += (k ? ", " : "") + std::to_string(sizes[k]);
  list += "]";
  // Each size and every partial sum must fit: a list such as [2^64 - 1, 5] would otherwise
  // wrap around to a sum that matches the axis.
  std::size_t total = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    checked_size("split: a size in the list", sizes[k]);
    if (sizes[k] > in[a] - total) {
      throw ValueError("split: sizes " + list + " do not fit axis " + std::to_string(axis) +
                       " of input shape " + shape_str(in) + " (size " + std::to_string(in[a]) + "): size " +
                       std::to_string(sizes[k]) + " at position " + std::to_string(k) +
                       " goes past the end of the axis");
    }
    total += sizes[k];
  }
  if (total != in[a]) {
    throw ValueError("split: sizes " + list + " sum to " + std::to_string(total) + " but axis " +
                     std::to_string(axis) + " of input shape " + shape_str(in) + " has size " +
                     std::to_string(in[a]));
  }
  return split_checked(x, a, sizes);
}

#define TAPEGRAD_INSTANTIATE(T)                                                   \
  template Var<T> concat(const std::vector<Var<T>>&, std::ptrdiff_t);             \
  template Var<T> stack(const std::vector<Var<T>>&, std::ptrdiff_t);              \
  template std::vector<Var<T>> split(const Var<T>&, std::size_t, std::ptrdiff_t); \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<std::size_t>&, std::ptrdiff_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
