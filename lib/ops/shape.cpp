// Shape ops that keep or pick elements of one Var: reshape, flatten, squeeze, unsqueeze
// (same data, new shape), transpose and permute (reordering axes), slice, select and
// index_select (picking along an axis). Joining and splitting: shape_join.cpp.
#include "tapegrad/ops/shape.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "shape_common.hpp"
#include "../core/strided.hpp"

namespace tapegrad {

namespace {

// "(4, -1)": a requested shape, which may hold -1.
std::string dims_str(const std::vector<std::ptrdiff_t>& d) {
  std::string s = "(";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + ")";
}

// PyTorch lets a 0-d tensor take axis 0 or -1 where an axis is expected: check it as if the
// tensor had one dim.
std::size_t normalize_axis_0d(const char* op, std::ptrdiff_t axis, std::size_t ndim) {
  return normalize_axis(op, axis, std::max<std::size_t>(ndim, 1));
}

// ---- same data, new shape ----
// y = x with another shape (the row-major order of the elements is unchanged);
// dL/dx = dL/dy read in that same order.
template <class T>
Var<T> relabel(const char* op, const Var<T>& x, const Shape& shape) {
  Tape<T>& t = x.tape();
  auto r = t.record(op, {x});
  const xt::xarray<T>& xv = t.value(x);
  std::copy(xv.data(), xv.data() + xv.size(), r.out(shape).data());
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    for (std::size_t i = 0, n = c.grad().size(); i < n; ++i) gx[i] += g[i];
  });
}

// ---- permute ----
// y[j_0, ..., j_{d-1}] = x[i] with i_{perm[k]} = j_k;  dL/dx[i] = dL/dy[j] at the same pairs.
// Walks y in row-major order with x's strides permuted. ints() = perm.
std::array<std::ptrdiff_t, detail::kMaxDims> permuted_strides(const Shape& in,
                                                              const std::vector<std::ptrdiff_t>& perm) {
  std::array<std::ptrdiff_t, detail::kMaxDims> stride{}, out{};
  std::ptrdiff_t s = 1;
  for (std::size_t d = in.size(); d-- > 0;) {
    stride[d] = s;
    s *= static_cast<std::ptrdiff_t>(in[d]);
  }
  for (std::size_t j = 0; j < perm.size(); ++j) out[j] = stride[static_cast<std::size_t>(perm[j])];
  return out;
}

template <class T>
Var<T> permute_checked(const char* op, const Var<T>& x, const std::vector<std::size_t>& perm) {
  Tape<T>& t = x.tape();
  const Shape& in = t.shape(x);
  if (in.size() > detail::kMaxDims) {
    throw ShapeError(std::string(op) + ": at most " + std::to_string(detail::kMaxDims) +
                     " dims are supported; got shape " + shape_str(in));
  }
  Shape out_shape(perm.size());
  for (std::size_t j = 0; j < perm.size(); ++j) out_shape[j] = in[perm[j]];
  const bool empty = checked_numel(op, in) == 0;
  auto r = t.record(op, {x});
  for (auto p : perm) r.ints().push_back(static_cast<std::ptrdiff_t>(p));
  const auto sx = permuted_strides(in, r.ints());
  const T* px = t.value(x).data();
  T* po = r.out(out_shape).data();
  // An empty array has nothing to move, but its other dims may be huge: skip the walk.
  if (!empty)
    detail::for_each_broadcast2(out_shape, sx, sx,
                                [&](std::size_t j, std::ptrdiff_t i, std::ptrdiff_t) { po[j] = px[i]; });
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    T* gx = c.input_grad(0).data();
    if (c.grad().size() == 0) return;
    const auto strides = permuted_strides(c.input(0).shape(), c.ints());
    const T* g = c.grad().data();
    detail::for_each_broadcast2(c.grad().shape(), strides, strides,
                                [&](std::size_t j, std::ptrdiff_t i, std::ptrdiff_t) { gx[i] += g[j]; });
  });
}

}  // namespace

// reshape: y = x with shape `shape` (one entry may be -1, inferred); dL/dx = dL/dy reshaped.
template <class T>
Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& shape) {
  const Shape& in = Tape<T>::of("reshape", {x}).shape(x);
  const std::size_t total = checked_numel("reshape", in);
  const auto fail = [&](const std::string& why) {
    return ShapeError("reshape: cannot reshape " + shape_str(in) + " (" + std::to_string(total) +
                      " elements) into " + dims_str(shape) + why);
  };
  std::ptrdiff_t inferred = -1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0) {
        throw ValueError("reshape: only one dim can be -1; got " + dims_str(shape));
      }
      inferred = static_cast<std::ptrdiff_t>(d);
    } else if (shape[d] < 0) {
      throw ValueError("reshape: invalid size " + std::to_string(shape[d]) + " at dim " + std::to_string(d) +
                       " of " + dims_str(shape) + " (sizes are >= 0, or -1 once)");
    }
  }
  // The -1 dim counts as 1 in the product of the known sizes, which must not overflow.
  Shape out(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d)
    out[d] = shape[d] == -1 ? 1 : static_cast<std::size_t>(shape[d]);
  std::size_t known = 0;
  try {
    known = checked_numel("reshape", out);
  } catch (const ShapeError&) {
    throw fail(": the product of the sizes overflows (it is larger than " + std::to_string(kMaxSize) + ")");
  }
  if (inferred >= 0) {
    if (known == 0) throw fail(": the size of the -1 dim is ambiguous when the other sizes multiply to 0");
    if (total % known != 0) throw fail("");
    out[static_cast<std::size_t>(inferred)] = total / known;
  } else if (known != total) {
    throw fail("");
  }
  return relabel("reshape", x, out);
}

// flatten: merges axes start..end into one of their product's size (a reshape).
template <class T>
Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_axis, std::ptrdiff_t end_axis) {
  const Shape& in = Tape<T>::of("flatten", {x}).shape(x);
  checked_numel("flatten", in);
  const std::size_t s = normalize_axis_0d("flatten", start_axis, in.size());
  const std::size_t e = normalize_axis_0d("flatten", end_axis, in.size());
  if (s > e) {
    throw ValueError("flatten: start_axis " + std::to_string(start_axis) + " comes after end_axis " +
                     std::to_string(end_axis) + " for input shape " + shape_str(in));
  }
  if (in.empty()) return relabel("flatten", x, Shape{1});
  Shape out;
  for (std::size_t d = 0; d < s; ++d) out.push_back(in[d]);
  out.push_back(dims_product(in, s, e + 1));
  for (std::size_t d = e + 1; d < in.size(); ++d) out.push_back(in[d]);
  return relabel("flatten", x, out);
}

// squeeze: drops `axis` when its size is 1 (a reshape).
template <class T>
Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis) {
  const Shape& in = Tape<T>::of("squeeze", {x}).shape(x);
  const std::size_t a = normalize_axis_0d("squeeze", axis, in.size());
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (d != a || in[d] != 1) out.push_back(in[d]);
  }
  return relabel("squeeze", x, out);
}

template <class T>
Var<T> squeeze(const Var<T>& x) {
  const Shape& in = Tape<T>::of("squeeze", {x}).shape(x);
  Shape out;
  for (auto d : in) {
    if (d != 1) out.push_back(d);
  }
  return relabel("squeeze", x, out);
}

// unsqueeze: inserts a size-1 axis (a reshape).
template <class T>
Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t axis) {
  const Shape& in = Tape<T>::of("unsqueeze", {x}).shape(x);
  const std::size_t a = normalize_axis("unsqueeze", axis, in.size() + 1);
  return relabel("unsqueeze", x, insert_axis(in, a, 1));
}

// transpose: swaps axes d0 and d1 (a permute).
template <class T>
Var<T> transpose(const Var<T>& x, std::ptrdiff_t d0, std::ptrdiff_t d1) {
  const std::size_t nd = Tape<T>::of("transpose", {x}).shape(x).size();
  const std::size_t a = normalize_axis_0d("transpose", d0, nd);
  const std::size_t b = normalize_axis_0d("transpose", d1, nd);
  std::vector<std::size_t> perm(nd);
  for (std::size_t d = 0; d < nd; ++d) perm[d] = d;
  if (nd > 0) std::swap(perm[a], perm[b]);
  return permute_checked("transpose", x, perm);
}

// permute: output axis j is input axis dims[j].
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<std::ptrdiff_t>& dims) {
  const Shape& in = Tape<T>::of("permute", {x}).shape(x);
  const std::size_t nd = in.size();
  if (dims.size() != nd) {
    throw ValueError("permute: dims " + axes_str(dims) + " has " + std::to_string(dims.size()) +
                     " entries but the input " + shape_str(in) + " has " + std::to_string(nd) + " dims");
  }
  std::vector<std::size_t> perm(nd);
  std::vector<bool> seen(nd, false);
  for (std::size_t j = 0; j < nd; ++j) {
    perm[j] = normalize_axis("permute", dims[j], nd);
    if (seen[perm[j]]) {
      throw ValueError("permute: dims " + axes_str(dims) + " is not a permutation of the " +
                       std::to_string(nd) + " axes of " + shape_str(in) + ": axis " +
                       std::to_string(perm[j]) + " appears twice");
    }
    seen[perm[j]] = true;
  }
  return permute_checked("permute", x, perm);
}

// slice: y = x[..., start:stop:step, ...];  dL/dx is dL/dy scattered back, 0 elsewhere.
template <class T>
Var<T> slice(const Var<T>& x, std::ptrdiff_t axis, std::ptrdiff_t start, std::ptrdiff_t stop,
             std::ptrdiff_t step) {
  const Shape& in = Tape<T>::of("slice", {x}).shape(x);
  checked_numel("slice", in);
  const std::size_t a = normalize_axis("slice", axis, in.size());
  if (step < 1) {
    throw ValueError("slice: step must be >= 1; got " + std::to_string(step) + " (input shape " +
                     shape_str(in) + ", axis " + std::to_string(axis) + ")");
  }
  // Python's rules: count negative bounds from the end, then clamp into [0, n].
  const auto n = static_cast<std::ptrdiff_t>(in[a]);
  const auto bound = [n](std::ptrdiff_t v) { return std::clamp<std::ptrdiff_t>(v < 0 ? v + n : v, 0, n); };
  const std::ptrdiff_t s = bound(start), e = bound(stop);
  const std::size_t count = e > s ? static_cast<std::size_t>((e - s - 1) / step + 1) : 0;
  Shape out = in;
  out[a] = count;
  return gather(
      "slice", x, a, count,
      [s, step](std::size_t k) {
        return static_cast<std::size_t>(s + static_cast<std::ptrdiff_t>(k) * step);
      },
      out);
}

// select: y = x[..., index, ...] (the axis is dropped).
template <class T>
Var<T> select(const Var<T>& x, std::ptrdiff_t axis, std::ptrdiff_t index) {
  const Shape& in = Tape<T>::of("select", {x}).shape(x);
  checked_numel("select", in);
  const std::size_t a = normalize_axis("select", axis, in.size());
  const auto n = static_cast<std::ptrdiff_t>(in[a]);
  if (index < -n || index >= n) {
    throw ValueError("select: index " + std::to_string(index) + " is out of range for axis " +
                     std::to_string(axis) + " of size " + std::to_string(n) + " (input shape " +
                     shape_str(in) + ")");
  }
  const auto i = static_cast<std::size_t>(index < 0 ? index + n : index);
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (d != a) out.push_back(in[d]);
  }
  return gather(
      "select", x, a, 1, [i](std::size_t) { return i; }, out);
}

// index_select: y[..., k, ...] = x[..., indices[k], ...].
template <class T>
Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const std::vector<std::int64_t>& indices) {
  const Shape& in = Tape<T>::of("index_select", {x}).shape(x);
  checked_numel("index_select", in);
  const std::size_t a = normalize_axis("index_select", axis, in.size());
  const auto n = static_cast<std::int64_t>(in[a]);
  for (std::size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= n) {
      throw ValueError("index_select: index " + std::to_string(indices[k]) + " (at position " +
                       std::to_string(k) + ") is out of range for axis " + std::to_string(axis) +
                       " of size " + std::to_string(n) + " (input shape " + shape_str(in) +
                       "); indices must satisfy 0 <= index < size");
    }
  }
  Shape out = in;
  out[a] = indices.size();
  return gather(
      "index_select", x, a, indices.size(),
      [&indices](std::size_t k) { return static_cast<std::size_t>(indices[k]); }, out);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                         \
  template Var<T> reshape(const Var<T>&, const std::vector<std::ptrdiff_t>&);                           \
  template Var<T> flatten(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                               \
  template Var<T> squeeze(const Var<T>&, std::ptrdiff_t);                                               \
  template Var<T> squeeze(const Var<T>&);                                                               \
  template Var<T> unsqueeze(const Var<T>&, std::ptrdiff_t);                                             \
  template Var<T> transpose(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                             \
  template Var<T> permute(const Var<T>&, const std::vector<std::ptrdiff_t>&);                           \
  template Var<T> slice(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t); \
  template Var<T> select(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                                \
  template Var<T> index_select(const Var<T>&, std::ptrdiff_t, const std::vector<std::int64_t>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
