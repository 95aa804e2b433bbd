#include "tapegrad/data/dataloader.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

// splitmix64 (Steele, Lea, Flood 2014): a bijective mixer; consecutive inputs give
// statistically unrelated outputs.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Resizes only when the shape changes, so the buffer is reused across batches of equal size.
template <class T>
void ensure_shape(xt::xarray<T>& a, const Shape& shape) {
  if (a.shape() != shape) a.resize(shape);
}

// dst rows 0..B-1 = src rows idx[0..B-1] of a (N, ...) array.
template <class T>
void gather_rows_into(const xt::xarray<T>& src, const std::size_t* idx, std::size_t count,
                      xt::xarray<T>& dst) {
  Shape shape = src.shape();
  shape[0] = count;
  ensure_shape(dst, shape);
  const std::size_t row = count == 0 ? 0 : dst.size() / count;
  for (std::size_t i = 0; i < count; ++i) {
    std::copy_n(src.data() + idx[i] * row, row, dst.data() + i * row);
  }
}

}  // namespace

std::uint64_t epoch_seed(std::uint64_t seed, std::uint64_t epoch) {
  return splitmix64(splitmix64(seed) ^ epoch);
}

template <class T>
DataLoader<T>::DataLoader(const Dataset<T>& data, std::size_t batch_size, bool shuffle, std::uint64_t seed,
                          bool drop_last)
    : data_(&data), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  if (batch_size == 0) {
    throw ValueError("DataLoader: batch_size must be >= 1; got 0");
  }
  // A negative int passed as the batch size arrives as a huge size_t; reject it as PyTorch
  // rejects batch_size=-1. Any other size is fine: one larger than the dataset gives one batch.
  checked_size("DataLoader: batch_size", batch_size);
  if (data.empty()) {
    throw ValueError("DataLoader: the dataset is empty (inputs of shape " + shape_str(data.inputs().shape()) +
                     "); there is nothing to iterate");
  }
}

template <class T>
std::size_t DataLoader<T>::size() const {
  const std::size_t n = data_->size();
  // ceil(n / B) without forming n + B - 1, which wraps around for a B near SIZE_MAX.
  return n / batch_size_ + (!drop_last_ && n % batch_size_ != 0 ? 1 : 0);
}

template <class T>
std::vector<std::size_t> DataLoader<T>::epoch_order(std::size_t epoch) const {
  const std::size_t n = data_->size();
  if (shuffle_) {
    std::mt19937_64 rng(epoch_seed(seed_, epoch));
    return random_permutation(n, rng);
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  return order;
}

template <class T>
void DataLoader<T>::fill_batch(const std::vector<std::size_t>& order, std::size_t b, Batch<T>& out) const {
  if (b >= size() || order.size() != data_->size()) {
    throw ValueError("DataLoader::fill_batch: batch " + std::to_string(b) + " of an epoch with " +
                     std::to_string(size()) + " batches over an order of " + std::to_string(order.size()) +
                     " indices (dataset size " + std::to_string(data_->size()) + ")");
  }
  const std::size_t begin = b * batch_size_;
  const std::size_t count = std::min(batch_size_, order.size() - begin);
  const std::size_t* idx = order.data() + begin;
  for (std::size_t i = 0; i < count; ++i) {
    if (idx[i] >= data_->size()) {
      throw ValueError("DataLoader::fill_batch: order[" + std::to_string(begin + i) +
                       "] = " + std::to_string(idx[i]) + " (in batch " + std::to_string(b) +
                       ") is out of range for a dataset of " + std::to_string(data_->size()) + " examples");
    }
  }
  out.indices.assign(idx, idx + count);
  gather_rows_into(data_->inputs(), idx, count, out.inputs);
  if (data_->has_labels()) {
    const auto& labels = data_->labels();
    out.labels.resize(count);
    for (std::size_t i = 0; i < count; ++i) out.labels[i] = labels[idx[i]];
  } else {
    out.labels.clear();
  }
  if (data_->has_targets()) gather_rows_into(data_->targets(), idx, count, out.targets);
}

template <class T>
typename DataLoader<T>::Iterator DataLoader<T>::begin() {
  order_ = epoch_order(next_epoch_);
  ++next_epoch_;
  if (size() > 0) fill_batch(order_, 0, batch_);
  return Iterator(this, 0);
}

template class DataLoader<float>;
template class DataLoader<double>;

}  // namespace tapegrad
