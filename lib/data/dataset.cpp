#include "tapegrad/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

template <class T>
void check_has_example_dim(const char* what, const xt::xarray<T>& a) {
  if (a.dimension() == 0) {
    throw ShapeError(std::string("Dataset: ") + what +
                     " must have a leading example dim (N, ...); got a 0-d array of shape ()");
  }
  checked_numel("Dataset", a.shape());
}

Shape drop_first(const Shape& s) { return Shape(s.begin() + 1, s.end()); }

// Copies rows `indices` of a (N, ...) array into a new (len(indices), ...) array.
template <class T>
xt::xarray<T> gather_rows(const xt::xarray<T>& a, const std::vector<std::size_t>& indices) {
  Shape shape = a.shape();
  shape[0] = indices.size();
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  const std::size_t row = checked_numel("Dataset", drop_first(a.shape()));
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::copy_n(a.data() + indices[i] * row, row, out.data() + i * row);
  }
  return out;
}

}  // namespace

template <class T>
Dataset<T>::Dataset(xt::xarray<T> inputs) : inputs_(std::move(inputs)) {
  check_has_example_dim("inputs", inputs_);
}

template <class T>
Dataset<T>::Dataset(xt::xarray<T> inputs, std::vector<std::int64_t> labels)
    : inputs_(std::move(inputs)), labels_(std::move(labels)), kind_(DatasetKind::classification) {
  check_has_example_dim("inputs", inputs_);
  if (labels_.size() != inputs_.shape()[0]) {
    throw ShapeError("Dataset: inputs of shape " + shape_str(inputs_.shape()) + " hold " +
                     std::to_string(inputs_.shape()[0]) + " examples but there are " +
                     std::to_string(labels_.size()) + " labels");
  }
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    if (labels_[i] < 0) {
      throw ValueError("Dataset: label " + std::to_string(i) + " is " + std::to_string(labels_[i]) +
                       "; class labels must be >= 0");
    }
  }
}

template <class T>
Dataset<T>::Dataset(xt::xarray<T> inputs, xt::xarray<T> targets)
    : inputs_(std::move(inputs)), targets_(std::move(targets)), kind_(DatasetKind::regression) {
  check_has_example_dim("inputs", inputs_);
  check_has_example_dim("targets", targets_);
  if (targets_.shape()[0] != inputs_.shape()[0]) {
    throw ShapeError("Dataset: inputs of shape " + shape_str(inputs_.shape()) + " and targets of shape " +
                     shape_str(targets_.shape()) + " have different numbers of examples (" +
                     std::to_string(inputs_.shape()[0]) + " vs " + std::to_string(targets_.shape()[0]) + ")");
  }
}

template <class T>
const std::vector<std::int64_t>& Dataset<T>::labels() const {
  if (kind_ != DatasetKind::classification) {
    throw StateError(
        "Dataset::labels: this dataset has no class labels (it is " +
        std::string(kind_ == DatasetKind::regression ? "a regression dataset; use targets()" : "unlabelled") +
        ")");
  }
  return labels_;
}

template <class T>
const xt::xarray<T>& Dataset<T>::targets() const {
  if (kind_ != DatasetKind::regression) {
    throw StateError("Dataset::targets: this dataset has no targets (it is " +
                     std::string(kind_ == DatasetKind::classification
                                     ? "a classification dataset; use labels()"
                                     : "unlabelled") +
                     ")");
  }
  return targets_;
}

template <class T>
Shape Dataset<T>::example_shape() const {
  return drop_first(inputs_.shape());
}

template <class T>
Shape Dataset<T>::target_shape() const {
  return drop_first(targets().shape());
}

template <class T>
std::size_t Dataset<T>::num_classes() const {
  const auto& l = labels();
  if (l.empty()) return 0;
  return checked_add("Dataset::num_classes: the largest label + 1",
                     static_cast<std::size_t>(*std::max_element(l.begin(), l.end())), 1);
}

template <class T>
Dataset<T> Dataset<T>::subset(const std::vector<std::size_t>& indices) const {
  const std::size_t n = size();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= n) {
      throw ValueError("Dataset::subset: index " + std::to_string(indices[i]) + " (at position " +
                       std::to_string(i) + ") is out of range for a dataset of " + std::to_string(n) +
                       " examples");
    }
  }
  xt::xarray<T> x = gather_rows(inputs_, indices);
  switch (kind_) {
    case DatasetKind::classification: {
      std::vector<std::int64_t> l(indices.size());
      for (std::size_t i = 0; i < indices.size(); ++i) l[i] = labels_[indices[i]];
      return Dataset(std::move(x), std::move(l));
    }
    case DatasetKind::regression:
      return Dataset(std::move(x), gather_rows(targets_, indices));
    case DatasetKind::unlabelled:
      break;
  }
  return Dataset(std::move(x));
}

std::uint64_t uniform_index(std::mt19937_64& rng, std::uint64_t n) {
  if (n == 0) throw ValueError("uniform_index: n must be >= 1");
  // 2^64 = q * n + rem. Accept only the q * n smallest raw values, r <= 2^64 - 1 - rem: then
  // r % n is exactly uniform. (rem = 2^64 mod n, computed without overflowing.)
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t rem = (kMax % n + 1) % n;
  for (;;) {
    const std::uint64_t r = rng();
    if (r <= kMax - rem) return r % n;
  }
}

std::vector<std::size_t> random_permutation(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  // Fisher-Yates, back to front: swap p[i] with a uniform p[j], j in [0, i].
  for (std::size_t i = n; i > 1; --i) {
    const auto j = static_cast<std::size_t>(uniform_index(rng, i));
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

template <class T>
std::pair<Dataset<T>, Dataset<T>> train_test_split(const Dataset<T>& data, double test_fraction,
                                                   std::uint64_t seed) {
  const std::size_t n = data.size();
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    throw ValueError("train_test_split: test_fraction must be in (0, 1); got " +
                     std::to_string(test_fraction));
  }
  const auto n_test = static_cast<std::size_t>(std::ceil(test_fraction * static_cast<double>(n)));
  if (n_test == 0 || n_test >= n) {
    throw ValueError("train_test_split: test_fraction " + std::to_string(test_fraction) + " of " +
                     std::to_string(n) + " examples leaves " + std::to_string(n_test) + " test and " +
                     std::to_string(n - std::min(n, n_test)) +
                     " train examples; both parts must be non-empty");
  }
  std::mt19937_64 rng(seed);
  const std::vector<std::size_t> perm = random_permutation(n, rng);
  const std::vector<std::size_t> test(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_test));
  const std::vector<std::size_t> train(perm.begin() + static_cast<std::ptrdiff_t>(n_test), perm.end());
  return {data.subset(train), data.subset(test)};
}

template class Dataset<float>;
template class Dataset<double>;
template std::pair<Dataset<float>, Dataset<float>> train_test_split(const Dataset<float>&, double,
                                                                    std::uint64_t);
template std::pair<Dataset<double>, Dataset<double>> train_test_split(const Dataset<double>&, double,
                                                                      std::uint64_t);

}  // namespace tapegrad
