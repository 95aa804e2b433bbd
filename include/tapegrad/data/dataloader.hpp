#pragma once
// Mini-batches over a Dataset, like torch.utils.data.DataLoader(dataset, batch_size, shuffle,
// drop_last, generator=torch.Generator().manual_seed(seed)).
//
//   tg::DataLoader<float> loader(train, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/0);
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const tg::Batch<float>& b : loader) { ... b.inputs (B, ...), b.labels ... }
//
// Each pass over the loader (each begin()) is the next epoch: 0, 1, 2, ... With shuffle, epoch e
// visits the examples in random_permutation(N, mt19937_64(epoch_seed(seed, e))): the order is a
// deterministic function of (seed, e), so it matches a generator that advances by one
// permutation per epoch, and set_epoch(e) can resume in the middle of a run with the same
// orders. Without shuffle every epoch visits 0, 1, ..., N-1.
//
// The loader keeps a pointer to the dataset (which must outlive it) and one Batch buffer that
// every step overwrites in place: a step costs copying B rows, not allocating a batch.
// A reference to the batch is valid until the iterator advances; one pass at a time.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

#include "tapegrad/data/dataset.hpp"

namespace tapegrad {

template <class T>
struct Batch {
  xt::xarray<T> inputs;              // (B, ...) rows of the dataset's inputs
  std::vector<std::int64_t> labels;  // B labels (classification datasets only)
  xt::xarray<T> targets;             // (B, ...) (regression datasets only)
  std::vector<std::size_t> indices;  // the dataset index of each row
  std::size_t size() const { return indices.size(); }
};

// The seed of epoch e's shuffle: splitmix64(splitmix64(seed) ^ e), so that nearby seeds and
// nearby epochs give unrelated mt19937_64 streams.
std::uint64_t epoch_seed(std::uint64_t seed, std::uint64_t epoch);

template <class T>
class DataLoader {
 public:
  // ValueError for batch_size 0 or an empty dataset.
  DataLoader(const Dataset<T>& data, std::size_t batch_size, bool shuffle = false, std::uint64_t seed = 0,
             bool drop_last = false);
  // A temporary dataset would dangle: keep the dataset in a variable.
  DataLoader(Dataset<T>&& data, std::size_t batch_size, bool shuffle = false, std::uint64_t seed = 0,
             bool drop_last = false) = delete;

  // Batches per epoch, as len(loader) in PyTorch: ceil(N / B), or floor(N / B) with drop_last.
  std::size_t size() const;
  std::size_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }
  const Dataset<T>& dataset() const { return *data_; }

  // The order in which epoch `epoch` visits the examples (all N, including any that
  // drop_last then leaves out).
  std::vector<std::size_t> epoch_order(std::size_t epoch) const;
  // The epoch the next begin() starts; set_epoch(e) makes it e.
  std::size_t next_epoch() const { return next_epoch_; }
  void set_epoch(std::size_t epoch) { next_epoch_ = epoch; }

  // Writes batch b (0 <= b < size()) of `order` into `out`, reusing its buffers.
  void fill_batch(const std::vector<std::size_t>& order, std::size_t b, Batch<T>& out) const;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch<T>;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch<T>*;
    using reference = const Batch<T>&;

    Iterator(DataLoader* loader, std::size_t b) : loader_(loader), b_(b) {}
    reference operator*() const { return loader_->batch_; }
    pointer operator->() const { return &loader_->batch_; }
    Iterator& operator++() {
      if (++b_ < loader_->size()) loader_->fill_batch(loader_->order_, b_, loader_->batch_);
      return *this;
    }
    bool operator==(const Iterator& o) const { return loader_ == o.loader_ && b_ == o.b_; }
    bool operator!=(const Iterator& o) const { return !(*this == o); }

   private:
    DataLoader* loader_;
    std::size_t b_;
  };

  // Starts epoch next_epoch() (and advances it) and loads its first batch.
  Iterator begin();
  Iterator end() { return Iterator(this, size()); }

 private:
  const Dataset<T>* data_;
  std::size_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_last_;
  std::size_t next_epoch_ = 0;
  std::vector<std::size_t> order_;  // the current epoch's order
  Batch<T> batch_;                  // the reused batch buffer
};

}  // namespace tapegrad
