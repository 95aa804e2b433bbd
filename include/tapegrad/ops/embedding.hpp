#pragma once
// embedding: a lookup table, torch.nn.functional.embedding(input, weight, padding_idx).
//
//   out[i1, ..., ik, :] = weight[indices[i1, ..., ik], :]
//
// Indices are std::int64_t, as cross_entropy's targets (PyTorch's Long), in an
// xt::xarray<std::int64_t> of any shape (a 0-d array, (N), (N, T), ...; a brace list such as
// {3, 1, 3} is an (N) array); the output has shape indices.shape() + (embedding_dim).
//
// Backward is a sparse row accumulation, not a one-hot matmul: for every position p,
// dL/dweight[indices[p], :] += dL/dout[p, :]. A row that appears several times gets the sum of
// its positions' gradients; rows that do not appear get 0; with padding_idx, the positions
// that look up padding_idx add nothing (its row gets a zero gradient, as in PyTorch; its
// value is still returned by the forward). No gradient flows to the indices.
//
// Not supported (PyTorch has them): max_norm / norm_type (renormalising rows in place during
// the forward), scale_grad_by_freq and sparse gradients.
#include <cstdint>
#include <optional>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// weight: (num_embeddings, embedding_dim). padding_idx, when given, is in
// [-num_embeddings, num_embeddings); a negative one counts from the end (as F.embedding:
// -1 is the last row). Errors, thrown before anything is recorded: ShapeError for a weight that
// is not 2-D; ValueError for an index outside [0, num_embeddings) (naming the index, its
// position in `indices` and num_embeddings; negative indices are out of range, as in PyTorch)
// and for a padding_idx outside its range.
template <class T>
Var<T> embedding(const xt::xarray<std::int64_t>& indices, const Var<T>& weight,
                 std::optional<std::int64_t> padding_idx = std::nullopt);

}  // namespace tapegrad
