#pragma once
// torch.utils.data.DistributedSampler: each rank of a data-parallel job gets its own shard of a
// dataset's indices, the shards disjoint (up to padding, below), the same size on every rank,
// and re-shuffled each epoch from one seed shared by every rank.
//
//   tg::DistributedSampler sampler(train.size());             // this process's rank and world size
//   for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
//     sampler.set_epoch(epoch);
//     tg::Dataset<float> shard = train.subset(sampler.indices());
//     tg::DataLoader<float> loader(shard, per_rank_batch);      // no shuffle: the sampler did it
//     ...
//   }
//
// The arithmetic is PyTorch 1.13's, exactly (N = dataset size, R = num_replicas):
//   num_samples = ceil((N - R) / R) = floor(N / R)   with drop_last when R does not divide N
//               = ceil(N / R)                        otherwise
//   total_size  = num_samples * R
// An epoch's order of all N indices (0..N-1, or shuffled) is cut to total_size with drop_last,
// or else padded to it by repeating its start (indices[:padding], or the whole order repeated
// as often as needed when the padding exceeds N); rank r takes the elements r, r + R, r + 2R, ...
// of that list. So the ranks' shards are disjoint, and together cover every index, except that
// padding repeats up to R - 1 indices and drop_last leaves up to R - 1 out.
//
// Deliberate difference: the shuffle is tapegrad's, the DataLoader's rule:
// random_permutation(N, mt19937_64(epoch_seed(seed, epoch))) (data/dataloader.hpp), not
// torch.randperm with seed + epoch: the same (seed, epoch) gives the same order on every rank
// and every run, but not torch's order. Without shuffle the indices are torch's.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace tapegrad {

class DistributedSampler {
 public:
  // num_replicas and rank default to tapegrad::dist's world size and rank (a StateError when
  // built with MPI and MPI is not initialised; a world of one without MPI). ValueError for
  // num_replicas < 1 or a rank outside [0, num_replicas - 1] (PyTorch's message).
  explicit DistributedSampler(std::size_t dataset_size, std::optional<int> num_replicas = std::nullopt,
                              std::optional<int> rank = std::nullopt, bool shuffle = true,
                              std::uint64_t seed = 0, bool drop_last = false);

  // len(sampler): the indices this rank gets per epoch.
  std::size_t size() const { return num_samples_; }
  std::size_t num_samples() const { return num_samples_; }
  std::size_t total_size() const { return num_samples_ * static_cast<std::size_t>(num_replicas_); }
  std::size_t dataset_size() const { return dataset_size_; }
  int num_replicas() const { return num_replicas_; }
  int rank() const { return rank_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }
  std::uint64_t seed() const { return seed_; }

  // The epoch whose shard indices() returns (0 until set); call it at the start of each epoch.
  void set_epoch(std::size_t epoch) { epoch_ = epoch; }
  std::size_t epoch() const { return epoch_; }

  // This rank's indices for the current epoch: num_samples() of them, in order.
  std::vector<std::size_t> indices() const;

 private:
  std::size_t dataset_size_;
  int num_replicas_;
  int rank_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_last_;
  std::size_t num_samples_ = 0;
  std::size_t epoch_ = 0;
};

}  // namespace tapegrad
