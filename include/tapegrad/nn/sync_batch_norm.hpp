#pragma once
// torch.nn.SyncBatchNorm: BatchNorm1d whose training statistics are those of the GLOBAL batch,
// the union of every rank's local batch (tapegrad::dist, dist.hpp), so that R data-parallel
// replicas at batch b normalise as one process at batch R * b does.
//
// Training forward, per channel c, over every rank's N * L values (M of them in all):
//   mean_c = (sum over ranks of sum x) / M            one allreduce of C sums and the count
//   var_c  = (sum over ranks of sum (x - mean_c)^2) / M   a second allreduce (biased variance)
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
// in double for float inputs too (the two-pass variance: no cancellation). Running statistics
// as BatchNorm1d's, from the global mean and the UNBIASED global variance var_c * M / (M - 1):
// identical on every rank. Backward: the local sums of dy and dy * xhat are allreduced,
//   dx = weight_c rstd_c (dy - (sum dy) / M - xhat (sum dy xhat) / M)      (global sums)
// while weight's and bias's gradients are the LOCAL sums, as PyTorch's: DistributedDataParallel
// averages them over the ranks (nn/distributed.hpp). Every rank must run the forward and the
// backward of each SyncBatchNorm (they communicate), as in PyTorch.
//
// Eval mode (with running statistics) is BatchNorm1d's eval: no communication. With a group of
// one (dist::Group::self(), or a build without MPI) SyncBatchNorm computes what BatchNorm1d does.
//
// Errors: as BatchNorm1d's (ShapeError for an input that is not (N, C) or (N, C, L) with C =
// num_features; ValueError for a bad eps or momentum); StateError when the GLOBAL batch has fewer
// than 2 values per channel (decided collectively: a rank may have an empty local batch) or MPI
// is not initialised. A rank whose forward throws before communicating (a wrong shape) leaves
// the others waiting, as a missing collective does in any MPI program.
//
// Inputs: PyTorch's SyncBatchNorm takes (N, C, *) of any rank; this one (N, C) or (N, C, L),
// BatchNorm1d's.
#include <memory>

#include "tapegrad/dist.hpp"
#include "tapegrad/nn/norm.hpp"

namespace tapegrad {

template <class T>
class SyncBatchNorm : public Module<T> {
 public:
  explicit SyncBatchNorm(std::size_t num_features, BatchNormOptions options = {},
                         dist::Group group = dist::Group::world());
  // A SyncBatchNorm with bn's options, parameters, buffers (copied) and mode.
  static std::shared_ptr<SyncBatchNorm<T>> from_batch_norm(const BatchNorm1d<T>& bn,
                                                           dist::Group group = dist::Group::world());

  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "SyncBatchNorm"; }
  std::string extra_repr() const override;
  std::size_t num_features() const { return c_; }
  const BatchNormOptions& options() const { return options_; }
  dist::Group group() const { return group_; }

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;
  xt::xarray<T>* running_mean = nullptr;  // null without track_running_stats
  xt::xarray<T>* running_var = nullptr;
  xt::xarray<T>* num_batches_tracked = nullptr;

 private:
  std::size_t c_;
  BatchNormOptions options_;
  dist::Group group_;
  BatchStatistics batch_stats_;  // a training forward's global statistics, for the running ones
};

// torch.nn.SyncBatchNorm.convert_sync_batchnorm: every BatchNorm1d in the module tree becomes a
// SyncBatchNorm with its parameters, buffers and mode; returns the module (a new SyncBatchNorm
// when `module` itself is a BatchNorm1d). Only children of modules that allow swapping them
// (Sequential: Module::children_replaceable) can be converted: a BatchNorm1d held inside another
// module is a ValueError naming its path, found before anything changes.
template <class T>
std::shared_ptr<Module<T>> convert_sync_batchnorm(std::shared_ptr<Module<T>> module,
                                                  dist::Group group = dist::Group::world());

extern template class SyncBatchNorm<float>;
extern template class SyncBatchNorm<double>;

}  // namespace tapegrad
