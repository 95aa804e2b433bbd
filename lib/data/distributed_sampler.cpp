#include "tapegrad/data/distributed_sampler.hpp"

#include <random>
#include <string>

#include "tapegrad/data/dataloader.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/dist.hpp"

namespace tapegrad {

DistributedSampler::DistributedSampler(std::size_t dataset_size, std::optional<int> num_replicas,
                                       std::optional<int> rank, bool shuffle, std::uint64_t seed,
                                       bool drop_last)
    : dataset_size_(dataset_size),
      num_replicas_(num_replicas ? *num_replicas : dist::world_size()),
      rank_(rank ? *rank : dist::rank()),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  if (num_replicas_ < 1) {
    throw ValueError("DistributedSampler: num_replicas must be at least 1, got " +
                     std::to_string(num_replicas_));
  }
  if (rank_ >= num_replicas_ || rank_ < 0) {  // PyTorch's message
    throw ValueError("DistributedSampler: Invalid rank " + std::to_string(rank_) +
                     ", rank should be in the interval [0, " + std::to_string(num_replicas_ - 1) + "]");
  }
  const auto r = static_cast<std::size_t>(num_replicas_);
  // PyTorch: ceil((N - R) / R) with drop_last when R does not divide N, which is floor(N / R)
  // (and 0 for N < R); else ceil(N / R).
  num_samples_ = (drop_last_ && dataset_size_ % r != 0) ? dataset_size_ / r : (dataset_size_ + r - 1) / r;
}

std::vector<std::size_t> DistributedSampler::indices() const {
  std::vector<std::size_t> order;
  if (shuffle_) {
    std::mt19937_64 rng(epoch_seed(seed_, epoch_));
    order = random_permutation(dataset_size_, rng);
  } else {
    order.resize(dataset_size_);
    for (std::size_t i = 0; i < dataset_size_; ++i) order[i] = i;
  }
  // Element k of the padded (or cut) list of total_size is order[k mod N]: for k < N the order
  // itself (cut by drop_last), past N its start repeated, as PyTorch's padding.
  const auto r = static_cast<std::size_t>(num_replicas_);
  std::vector<std::size_t> mine(num_samples_);
  for (std::size_t j = 0; j < num_samples_; ++j) {
    mine[j] = order[(static_cast<std::size_t>(rank_) + j * r) % dataset_size_];
  }
  return mine;
}

}  // namespace tapegrad
