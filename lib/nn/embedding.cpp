#include "tapegrad/nn/embedding.hpp"

#include <cmath>
#include <sstream>

namespace tapegrad {

namespace {

// (num_embeddings, embedding_dim), checked before anything is allocated.
Shape table_shape(std::size_t num_embeddings, std::size_t embedding_dim) {
  checked_size("Embedding: num_embeddings", num_embeddings);
  checked_size("Embedding: embedding_dim", embedding_dim);
  if (num_embeddings == 0 || embedding_dim == 0) {
    throw ValueError("Embedding: num_embeddings and embedding_dim must be >= 1; got num_embeddings " +
                     std::to_string(num_embeddings) + ", embedding_dim " + std::to_string(embedding_dim));
  }
  checked_mul("Embedding: num_embeddings * embedding_dim (the weight's number of elements)", num_embeddings,
              embedding_dim);
  return {num_embeddings, embedding_dim};
}

// The padding index in [0, rows), as nn.Embedding's constructor normalizes it.
std::optional<std::int64_t> normalized_padding(const EmbeddingOptions& o, std::size_t rows) {
  if (!o.padding_idx()) return std::nullopt;
  const auto n = static_cast<std::int64_t>(rows);
  const std::int64_t p = *o.padding_idx();
  if (p < -n || p >= n) {
    throw ValueError("Embedding: padding_idx " + std::to_string(p) + " is out of range for num_embeddings " +
                     std::to_string(rows) + " (expected -" + std::to_string(rows) + " <= padding_idx < " +
                     std::to_string(rows) + ")");
  }
  return p < 0 ? p + n : p;
}

const Shape& pretrained_shape(const Shape& s) {
  if (s.size() != 2 || s[0] == 0 || s[1] == 0) {
    throw ShapeError(
        "Embedding::from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim) "
        "with both >= 1; got shape " +
        shape_str(s));
  }
  return s;
}

}  // namespace

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options,
                        Generator& gen)
    : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {
  const Shape shape = table_shape(num_embeddings, embedding_dim);
  padding_idx_ = normalized_padding(options, num_embeddings);
  xt::xarray<T> w = normal_array<T>(shape, 0.0, 1.0, gen);
  if (padding_idx_) {
    T* row = w.data() + static_cast<std::size_t>(*padding_idx_) * embedding_dim;
    std::fill(row, row + embedding_dim, T(0));
  }
  weight = &this->register_parameter("weight", std::move(w));
}

template <class T>
Embedding<T>::Embedding(Pretrained, const xt::xarray<T>& embeddings, bool freeze, EmbeddingOptions options)
    : num_embeddings_(pretrained_shape(embeddings.shape())[0]), embedding_dim_(embeddings.shape()[1]) {
  padding_idx_ = normalized_padding(options, num_embeddings_);
  weight = &this->register_parameter("weight", embeddings, !freeze);
}

template <class T>
Embedding<T> Embedding<T>::from_pretrained(const xt::xarray<T>& embeddings, bool freeze,
                                           EmbeddingOptions options) {
  return Embedding(Pretrained{}, embeddings, freeze, options);
}

template <class T>
Var<T> Embedding<T>::lookup(Tape<T>& t, const xt::xarray<std::int64_t>& indices) {
  // Binding the weight records a leaf: drop it again if the lookup refuses the indices.
  const std::size_t size = t.size();
  try {
    return embedding(indices, t.param(*weight), padding_idx_);
  } catch (...) {
    if (t.size() >= size) t.truncate(size);
    throw;
  }
}

template <class T>
Var<T> Embedding<T>::operator()(Tape<T>& t, const xt::xarray<std::int64_t>& indices) {
  return lookup(t, indices);
}

template <class T>
Var<T> Embedding<T>::forward(Tape<T>& t, const Var<T>& x) {
  const xt::xarray<T>& v = Tape<T>::of("Embedding", {x}).value(x);
  // The converted indices: a per-thread buffer, reused (an eval forward writes nothing shared).
  thread_local xt::xarray<std::int64_t> idx;
  if (idx.shape() != v.shape()) idx.resize(v.shape());
  const double rows = static_cast<double>(num_embeddings_);
  for (std::size_t p = 0; p < v.size(); ++p) {
    const double d = static_cast<double>(v.data()[p]);
    if (!(d >= 0 && d < rows && std::floor(d) == d)) {
      std::ostringstream os;
      os << "Embedding: input value " << d << " at flat position " << p << " of input "
         << shape_str(v.shape()) << " is not an index in [0, " << num_embeddings_ << ") (num_embeddings)";
      throw ValueError(os.str());
    }
    idx.data()[p] = static_cast<std::int64_t>(d);
  }
  return lookup(t, idx);
}

template <class T>
std::string Embedding<T>::extra_repr() const {
  std::string s = std::to_string(num_embeddings_) + ", " + std::to_string(embedding_dim_);
  if (padding_idx_) s += ", padding_idx=" + std::to_string(*padding_idx_);
  return s;
}

template class Embedding<float>;
template class Embedding<double>;

}  // namespace tapegrad
