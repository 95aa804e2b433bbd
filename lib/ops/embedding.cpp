#include "tapegrad/ops/embedding.hpp"

#include <algorithm>
#include <string>

namespace tapegrad {

namespace {

// The node's ints: the normalized padding_idx (-1 for none), then the indices as a list.
enum class EmbeddingInt : std::size_t { padding_idx, count };

// "(1, 2)": the position of flat element `flat` of an array of shape s.
std::string position_str(const Shape& s, std::size_t flat) {
  Shape pos(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    pos[d] = flat % s[d];
    flat /= s[d];
  }
  return shape_str(pos);
}

// padding_idx in [0, rows) or -1 for none.
std::ptrdiff_t normalized_padding(std::optional<std::int64_t> padding_idx, std::size_t rows) {
  if (!padding_idx) return -1;
  const auto n = static_cast<std::int64_t>(rows);
  const std::int64_t p = *padding_idx;
  if (p < -n || p >= n) {
    throw ValueError("embedding: padding_idx " + std::to_string(p) + " is out of range for num_embeddings " +
                     std::to_string(rows) + " (expected -" + std::to_string(rows) + " <= padding_idx < " +
                     std::to_string(rows) + ")");
  }
  return static_cast<std::ptrdiff_t>(p < 0 ? p + n : p);
}

void check_indices(const xt::xarray<std::int64_t>& indices, std::size_t rows) {
  const auto n = static_cast<std::int64_t>(rows);
  const std::int64_t* idx = indices.data();
  for (std::size_t p = 0; p < indices.size(); ++p) {
    if (idx[p] < 0 || idx[p] >= n) {
      throw ValueError("embedding: index " + std::to_string(idx[p]) + " at position " +
                       position_str(indices.shape(), p) + " of indices " + shape_str(indices.shape()) +
                       " is out of range for num_embeddings " + std::to_string(rows) +
                       " (expected 0 <= index < " + std::to_string(rows) + ")");
    }
  }
}

}  // namespace

// out[p, :] = w[idx[p], :];   dL/dw[r, :] = Σ_{p: idx[p] = r, r != padding_idx} dL/dout[p, :]
template <class T>
Var<T> embedding(const xt::xarray<std::int64_t>& indices, const Var<T>& weight,
                 std::optional<std::int64_t> padding_idx) {
  Tape<T>& t = Tape<T>::of("embedding", {weight});
  const Shape& ws = t.shape(weight);
  if (ws.size() != 2) {
    throw ShapeError("embedding: weight must be 2-D (num_embeddings, embedding_dim); got shape " +
                     shape_str(ws));
  }
  const std::size_t rows = ws[0], dim = ws[1];
  const std::ptrdiff_t pad = normalized_padding(padding_idx, rows);
  check_indices(indices, rows);
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  checked_numel("embedding", out_shape);
  auto r = t.record("embedding", {weight});
  r.set_int(EmbeddingInt::padding_idx, pad);
  std::vector<std::ptrdiff_t>& list = r.template int_list<EmbeddingInt>();
  const std::int64_t* idx = indices.data();
  for (std::size_t p = 0; p < indices.size(); ++p) list.push_back(static_cast<std::ptrdiff_t>(idx[p]));
  T* out = r.out(out_shape).data();
  const T* w = t.value(weight).data();
  for (std::size_t p = 0; p < indices.size(); ++p) {
    std::copy_n(w + static_cast<std::size_t>(idx[p]) * dim, dim, out + p * dim);
  }
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const std::size_t width = c.input(0).shape()[1];
    const std::ptrdiff_t skipped = c.int_at(EmbeddingInt::padding_idx);
    const IntSpan picked = c.template int_list<EmbeddingInt>();
    const T* g = c.grad().data();
    T* gw = c.input_grad(0).data();
    for (std::size_t p = 0; p < picked.size(); ++p) {
      if (picked[p] == skipped) continue;
      T* dst = gw + static_cast<std::size_t>(picked[p]) * width;
      const T* src = g + p * width;
      for (std::size_t j = 0; j < width; ++j) dst[j] += src[j];
    }
  });
}

template Var<float> embedding(const xt::xarray<std::int64_t>&, const Var<float>&,
                              std::optional<std::int64_t>);
template Var<double> embedding(const xt::xarray<std::int64_t>&, const Var<double>&,
                               std::optional<std::int64_t>);

}  // namespace tapegrad
