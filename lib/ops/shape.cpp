#include "tapegrad/ops/shape.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "tapegrad/core/strided.hpp"

namespace tapegrad {

namespace {

// "(4, -1)": a requested shape, which may hold -1.
std::string dims_str(const std::vector<std::ptrdiff_t>& d) {
  std::string s = "(";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + ")";
}

std::size_t dims_product(const Shape& s, std::size_t from, std::size_t to) {
  std::size_t p = 1;
  for (std::size_t d = from; d < to; ++d) p *= s[d];
  return p;
}

// s with a new axis of `size` at position a (svector::insert trips -Warray-bounds in GCC).
Shape insert_axis(const Shape& s, std::size_t a, std::size_t size) {
  Shape out;
  for (std::size_t d = 0; d <= s.size(); ++d) {
    if (d == a) out.push_back(size);
    if (d < s.size()) out.push_back(s[d]);
  }
  return out;
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

// ---- gather along one axis ----
// With x's shape split around `axis` as (outer, n, inner):
//   y[o, k, i] = x[o, idx[k], i],   dL/dx[o, idx[k], i] += dL/dy[o, k, i]
// (a repeated index receives the sum of its gradients). ints() = {axis, idx...}.
template <class T>
void gather_backward(BackwardCtx<T>& c) {
  if (!c.needs_grad(0)) return;
  const Shape& in = c.input(0).shape();
  const auto& ints = c.ints();
  const auto axis = static_cast<std::size_t>(ints[0]);
  const std::size_t outer = dims_product(in, 0, axis), n = in[axis], inner = dims_product(in, axis + 1, in.size());
  const std::size_t count = ints.size() - 1;
  const T* g = c.grad().data();
  T* gx = c.input_grad(0).data();
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t k = 0; k < count; ++k) {
      const T* src = g + (o * count + k) * inner;
      T* dst = gx + (o * n + static_cast<std::size_t>(ints[1 + k])) * inner;
      for (std::size_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
  }
}

// Records the gather of `count` entries index(0..count-1) along `axis`, output shaped
// `out_shape`. The caller has validated axis and indices.
template <class T, class Index>
Var<T> gather(const char* op, const Var<T>& x, std::size_t axis, std::size_t count, Index index,
              const Shape& out_shape) {
  Tape<T>& t = x.tape();
  auto r = t.record(op, {x});
  const xt::xarray<T>& xv = t.value(x);
  const Shape& in = xv.shape();
  const std::size_t outer = dims_product(in, 0, axis), n = in[axis], inner = dims_product(in, axis + 1, in.size());
  auto& ints = r.ints();
  ints.push_back(static_cast<std::ptrdiff_t>(axis));
  for (std::size_t k = 0; k < count; ++k) ints.push_back(static_cast<std::ptrdiff_t>(index(k)));
  const T* px = xv.data();
  T* po = r.out(out_shape).data();
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t k = 0; k < count; ++k) {
      const T* src = px + (o * n + static_cast<std::size_t>(ints[1 + k])) * inner;
      std::copy(src, src + inner, po + (o * count + k) * inner);
    }
  }
  return r.finish(&gather_backward<T>);
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
  auto r = t.record(op, {x});
  for (auto p : perm) r.ints().push_back(static_cast<std::ptrdiff_t>(p));
  const auto sx = permuted_strides(in, r.ints());
  const T* px = t.value(x).data();
  T* po = r.out(out_shape).data();
  detail::for_each_broadcast2(out_shape, sx, sx, [&](std::size_t j, std::ptrdiff_t i, std::ptrdiff_t) {
    po[j] = px[i];
  });
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const auto sx = permuted_strides(c.input(0).shape(), c.ints());
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    detail::for_each_broadcast2(c.grad().shape(), sx, sx, [&](std::size_t j, std::ptrdiff_t i, std::ptrdiff_t) {
      gx[i] += g[j];
    });
  });
}

// ---- concat / stack ----
// Seen as `outer` rows, the output's row o is input 0's row o, then input 1's row o, ...
// (input k's rows are its size / outer contiguous elements).
//   y[o, off_k + j] = x_k[o, j],   dL/dx_k[o, j] = dL/dy[o, off_k + j].   ints() = {outer}.
template <class T>
Var<T> join(const char* op, const std::vector<Var<T>>& xs, const Shape& out_shape, std::size_t outer) {
  Tape<T>& t = xs[0].tape();
  auto r = t.record(op, xs);
  r.ints().push_back(static_cast<std::ptrdiff_t>(outer));
  T* po = r.out(out_shape).data();
  if (outer > 0) {
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
    const auto outer = static_cast<std::size_t>(c.ints()[0]);
    if (outer == 0) return;
    const std::size_t row = c.grad().size() / outer;
    const T* g = c.grad().data();
    std::size_t off = 0;
    for (std::size_t k = 0; k < c.num_inputs(); ++k) {
      const std::size_t chunk = c.input(k).size() / outer;
      if (c.needs_grad(k)) {
        T* gx = c.input_grad(k).data();
        for (std::size_t o = 0; o < outer; ++o) {
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
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (!xs[k].defined()) {
      throw StateError(std::string(op) + ": input " + std::to_string(k) + " is an empty (default-constructed) Var");
    }
    if (&xs[k].tape() != &xs[0].tape()) {
      throw StateError(std::string(op) + ": input " + std::to_string(k) +
                       " is on a different tape than input 0; all inputs of an op must be "
                       "recorded on the same tape");
    }
    xs[0].tape().check(xs[k], op);
  }
  return xs[0].tape();
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
    pieces.push_back(gather("split", x, axis, size, [off](std::size_t k) { return off + k; }, s));
    off += size;
  }
  return pieces;
}

}  // namespace

// reshape: y = x with shape `shape` (one entry may be -1, inferred); dL/dx = dL/dy reshaped.
template <class T>
Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& shape) {
  const Shape& in = x.tape().shape(x);
  const std::size_t total = numel(in);
  const auto fail = [&](const std::string& why) {
    return ShapeError("reshape: cannot reshape " + shape_str(in) + " (" + std::to_string(total) +
                      " elements) into " + dims_str(shape) + why);
  };
  std::size_t known = 1;
  std::ptrdiff_t inferred = -1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0) {
        throw ValueError("reshape: only one dim can be -1; got " + dims_str(shape));
      }
      inferred = static_cast<std::ptrdiff_t>(d);
    } else if (shape[d] < 0) {
      throw ValueError("reshape: invalid size " + std::to_string(shape[d]) + " at dim " +
                       std::to_string(d) + " of " + dims_str(shape) + " (sizes are >= 0, or -1 once)");
    } else {
      known *= static_cast<std::size_t>(shape[d]);
    }
  }
  Shape out(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) out[d] = static_cast<std::size_t>(std::max<std::ptrdiff_t>(shape[d], 0));
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
  const Shape& in = x.tape().shape(x);
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
  const Shape& in = x.tape().shape(x);
  const std::size_t a = normalize_axis_0d("squeeze", axis, in.size());
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (d != a || in[d] != 1) out.push_back(in[d]);
  }
  return relabel("squeeze", x, out);
}

template <class T>
Var<T> squeeze(const Var<T>& x) {
  const Shape& in = x.tape().shape(x);
  Shape out;
  for (auto d : in) {
    if (d != 1) out.push_back(d);
  }
  return relabel("squeeze", x, out);
}

// unsqueeze: inserts a size-1 axis (a reshape).
template <class T>
Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t axis) {
  const Shape& in = x.tape().shape(x);
  const std::size_t a = normalize_axis("unsqueeze", axis, in.size() + 1);
  return relabel("unsqueeze", x, insert_axis(in, a, 1));
}

// transpose: swaps axes d0 and d1 (a permute).
template <class T>
Var<T> transpose(const Var<T>& x, std::ptrdiff_t d0, std::ptrdiff_t d1) {
  const std::size_t nd = x.tape().shape(x).size();
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
  const Shape& in = x.tape().shape(x);
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
  const Shape& in = x.tape().shape(x);
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
  return gather("slice", x, a, count,
                [s, step](std::size_t k) { return static_cast<std::size_t>(s + static_cast<std::ptrdiff_t>(k) * step); },
                out);
}

// select: y = x[..., index, ...] (the axis is dropped).
template <class T>
Var<T> select(const Var<T>& x, std::ptrdiff_t axis, std::ptrdiff_t index) {
  const Shape& in = x.tape().shape(x);
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
  return gather("select", x, a, 1, [i](std::size_t) { return i; }, out);
}

// index_select: y[..., k, ...] = x[..., indices[k], ...].
template <class T>
Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const std::vector<std::int64_t>& indices) {
  const Shape& in = x.tape().shape(x);
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
  return gather("index_select", x, a, indices.size(),
                [&indices](std::size_t k) { return static_cast<std::size_t>(indices[k]); }, out);
}

// concat: y = [x_0, x_1, ...] along `axis`;  dL/dx_k = the slice of dL/dy that x_k filled.
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis) {
  Tape<T>& t = check_list("concat", xs);
  const Shape& s0 = t.shape(xs[0]);
  if (s0.empty()) {
    throw ShapeError("concat: input 0 is 0-d (shape ()); 0-d Vars cannot be concatenated, use stack");
  }
  const std::size_t a = normalize_axis("concat", axis, s0.size());
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
    out[a] += s[a];
  }
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
  return join("stack", xs, insert_axis(s0, a, xs.size()), dims_product(s0, 0, a));
}

// split into pieces of split_size (torch.split with an int).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, std::size_t split_size, std::ptrdiff_t axis) {
  const Shape& in = x.tape().shape(x);
  const std::size_t a = normalize_axis("split", axis, in.size());
  const std::size_t n = in[a];
  if (split_size == 0 && n > 0) {
    throw ValueError("split: split_size can be 0 only for an axis of size 0; axis " + std::to_string(axis) +
                     " of input shape " + shape_str(in) + " has size " + std::to_string(n));
  }
  const std::size_t pieces = split_size == 0 ? 1 : std::max<std::size_t>((n + split_size - 1) / split_size, 1);
  std::vector<std::size_t> sizes(pieces, split_size);
  sizes.back() = n - split_size * (pieces - 1);
  return split_checked(x, a, sizes);
}

// split into pieces of the given sizes (torch.split with a list).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis) {
  const Shape& in = x.tape().shape(x);
  const std::size_t a = normalize_axis("split", axis, in.size());
  std::size_t total = 0;
  for (auto s : sizes) total += s;
  if (total != in[a]) {
    std::string list = "[";
    for (std::size_t k = 0; k < sizes.size(); ++k) list += (k ? ", " : "") + std::to_string(sizes[k]);
    throw ValueError("split: sizes " + list + "] sum to " + std::to_string(total) + " but axis " +
                     std::to_string(axis) + " of input shape " + shape_str(in) + " has size " +
                     std::to_string(in[a]));
  }
  return split_checked(x, a, sizes);
}

#define TAPEGRAD_INSTANTIATE(T)                                                              \
  template Var<T> reshape(const Var<T>&, const std::vector<std::ptrdiff_t>&);                \
  template Var<T> flatten(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                    \
  template Var<T> squeeze(const Var<T>&, std::ptrdiff_t);                                    \
  template Var<T> squeeze(const Var<T>&);                                                    \
  template Var<T> unsqueeze(const Var<T>&, std::ptrdiff_t);                                  \
  template Var<T> transpose(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                  \
  template Var<T> permute(const Var<T>&, const std::vector<std::ptrdiff_t>&);                \
  template Var<T> slice(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t,       \
                        std::ptrdiff_t);                                                     \
  template Var<T> select(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                     \
  template Var<T> index_select(const Var<T>&, std::ptrdiff_t, const std::vector<std::int64_t>&); \
  template Var<T> concat(const std::vector<Var<T>>&, std::ptrdiff_t);                        \
  template Var<T> stack(const std::vector<Var<T>>&, std::ptrdiff_t);                         \
  template std::vector<Var<T>> split(const Var<T>&, std::size_t, std::ptrdiff_t);            \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<std::size_t>&, std::ptrdiff_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
