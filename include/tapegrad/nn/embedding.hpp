#pragma once
// torch.nn.Embedding: a table of num_embeddings vectors of embedding_dim values, looked up by
// integer index (ops/embedding.hpp has the math and the gradient).
//
//   tg::Embedding<float> emb(vocab, 32, tg::EmbeddingOptions().padding_idx(0));
//   auto x = emb(tape, batch.inputs);   // (N, T) indices -> (N, T, 32)
//
// Parameter (PyTorch's name, so a state_dict loads key for key): weight (num_embeddings,
// embedding_dim), initialised N(0, 1) from `gen` as PyTorch's reset_parameters, with the
// padding_idx row then set to zero.
// Not supported (PyTorch has them): max_norm, norm_type, scale_grad_by_freq, sparse.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/embedding.hpp"

namespace tapegrad {

class EmbeddingOptions {
 public:
  // Positions that look up this row get no gradient. Negative counts from the end (-1 is the
  // last row), as in PyTorch; the constructor checks the range (ValueError).
  EmbeddingOptions& padding_idx(std::int64_t i) {
    padding_idx_ = i;
    return *this;
  }
  const std::optional<std::int64_t>& padding_idx() const { return padding_idx_; }

 private:
  std::optional<std::int64_t> padding_idx_;
};

template <class T>
class Embedding : public Module<T> {
 public:
  // ValueError for num_embeddings or embedding_dim of 0 or a negative int passed as a size, a
  // table whose element count overflows, or padding_idx outside
  // [-num_embeddings, num_embeddings).
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options = {},
            Generator& gen = default_generator());
  // Embedding(num_embeddings, embedding_dim, gen): the default options, drawn from gen.
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& gen)
      : Embedding(num_embeddings, embedding_dim, EmbeddingOptions(), gen) {}
  // nn.Embedding.from_pretrained: the table is a copy of `embeddings` (V, D) (a ShapeError
  // unless 2-D with V, D >= 1), kept as given (the padding row is not zeroed), and trained only
  // when freeze is false (weight->requires_grad = !freeze).
  static Embedding from_pretrained(const xt::xarray<T>& embeddings, bool freeze = true,
                                   EmbeddingOptions options = {});

  // The lookup: indices of any shape -> indices.shape() + (embedding_dim). A bad index is a
  // ValueError naming it, its position and num_embeddings, and leaves the tape as it was.
  Var<T> operator()(Tape<T>& t, const xt::xarray<std::int64_t>& indices);
  using Module<T>::operator();
  // For use inside a Sequential: x holds the indices as values of T, each an integer in
  // [0, num_embeddings) (else a ValueError naming the value and its position); converted and
  // looked up as above. No gradient flows to x.
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;

  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  std::size_t num_embeddings() const { return num_embeddings_; }
  std::size_t embedding_dim() const { return embedding_dim_; }
  // The normalized padding index (in [0, num_embeddings)), or none.
  const std::optional<std::int64_t>& padding_idx() const { return padding_idx_; }

  Parameter<T>* weight;

 private:
  struct Pretrained {};
  Embedding(Pretrained, const xt::xarray<T>& embeddings, bool freeze, EmbeddingOptions options);
  Var<T> lookup(Tape<T>& t, const xt::xarray<std::int64_t>& indices);

  std::size_t num_embeddings_, embedding_dim_;
  std::optional<std::int64_t> padding_idx_;
};

extern template class Embedding<float>;
extern template class Embedding<double>;

}  // namespace tapegrad
