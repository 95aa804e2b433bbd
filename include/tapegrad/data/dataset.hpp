#pragma once
// An in-memory dataset: N examples stacked along dim 0 of `inputs`, and per example either an
// integer class label (classification), a target tensor (regression, sequence prediction), or
// nothing (unlabelled data, e.g. a CSV without a label column).
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

enum class DatasetKind { unlabelled, classification, regression };

template <class T>
class Dataset {
 public:
  // An empty unlabelled dataset (size 0).
  Dataset() = default;
  // Unlabelled: inputs of shape (N, ...), N >= 0; a 0-d array is a ShapeError.
  explicit Dataset(xt::xarray<T> inputs);
  // Classification: labels[i] is the class of inputs[i]. ShapeError if labels.size() != N,
  // ValueError for a negative label.
  Dataset(xt::xarray<T> inputs, std::vector<std::int64_t> labels);
  // Regression: targets of shape (N, ...). ShapeError if the leading dims differ.
  Dataset(xt::xarray<T> inputs, xt::xarray<T> targets);

  std::size_t size() const { return inputs_.dimension() == 0 ? 0 : inputs_.shape()[0]; }
  bool empty() const { return size() == 0; }
  DatasetKind kind() const { return kind_; }
  bool has_labels() const { return kind_ == DatasetKind::classification; }
  bool has_targets() const { return kind_ == DatasetKind::regression; }

  const xt::xarray<T>& inputs() const { return inputs_; }
  // StateError unless the dataset is of that kind.
  const std::vector<std::int64_t>& labels() const;
  const xt::xarray<T>& targets() const;

  // The shape of one example: inputs.shape() without dim 0. Likewise for one target.
  Shape example_shape() const;
  Shape target_shape() const;
  // max(label) + 1 (0 for an empty dataset); StateError unless classification.
  std::size_t num_classes() const;

  // The examples at `indices`, in that order (repeats allowed). ValueError for an index >= N.
  Dataset subset(const std::vector<std::size_t>& indices) const;

 private:
  xt::xarray<T> inputs_ = xt::xarray<T>::from_shape({0});
  std::vector<std::int64_t> labels_;
  xt::xarray<T> targets_;
  DatasetKind kind_ = DatasetKind::unlabelled;
};

// A uniformly random permutation of 0..n-1 (Fisher-Yates). Portable: it uses only the raw
// output of mt19937_64 (fully specified by the standard), not std::shuffle or
// std::uniform_int_distribution, whose results differ between standard libraries.
std::vector<std::size_t> random_permutation(std::size_t n, std::mt19937_64& rng);
// An integer uniform in [0, n), n >= 1, by rejection sampling (no modulo bias), portable.
std::uint64_t uniform_index(std::mt19937_64& rng, std::uint64_t n);

// Splits a dataset into (train, test) after a seeded shuffle, like sklearn's
// train_test_split(shuffle=True): n_test = ceil(test_fraction * N), n_train = N - n_test.
// The test part is the first n_test indices of the permutation, the train part the rest (each
// in permutation order). ValueError unless 0 < test_fraction < 1 and both parts are non-empty.
template <class T>
std::pair<Dataset<T>, Dataset<T>> train_test_split(const Dataset<T>& data, double test_fraction,
                                                   std::uint64_t seed);

}  // namespace tapegrad
