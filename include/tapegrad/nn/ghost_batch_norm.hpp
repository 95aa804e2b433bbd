#pragma once
// GhostBatchNorm1d (Hoffer, Hubara and Soudry 2017, "Train longer, generalize better"):
// BatchNorm over "ghost" batches, chunks of the batch. PyTorch has no such layer: the module
// is BatchNorm1d applied to each chunk in turn (as the common PyTorch implementations do,
// torch.cat([bn(c) for c in x.chunk(ceil(N / virtual_batch_size))])), with BatchNorm1d's names.
#include <cstddef>
#include <optional>
#include <vector>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"

namespace tapegrad {

// Training on x of shape (N, C) or (N, C, L): the batch is split as torch.chunk does into
// k = ceil(N / virtual_batch_size) chunks of ceil(N / k) consecutive examples (the last one
// may be smaller; torch.chunk can then return fewer than k), each chunk is normalized with its
// own batch statistics (the same weight and bias), and the running statistics are updated
// once per chunk, in order, as BatchNorm1d does for a batch (num_batches_tracked counts chunks).
// Eval mode uses the running statistics, as BatchNorm1d. With one chunk (N <= virtual batch
// size) it is BatchNorm1d (the same bits). Options: BatchNorm1d's (BatchNormOptions), but
// track_running_stats must be true.
// Errors: StateError for a training chunk with one value per channel (its size is named) or an
// empty batch; ShapeError for a wrong channel count or rank; ValueError for a virtual batch
// size of 0, track_running_stats = false, a bad eps or momentum.
template <class T>
class GhostBatchNorm1d : public Module<T> {
 public:
  GhostBatchNorm1d(std::size_t num_features, std::size_t virtual_batch_size, BatchNormOptions options = {});
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "GhostBatchNorm1d"; }
  std::string extra_repr() const override;
  std::size_t virtual_batch_size() const { return vbs_; }

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;
  xt::xarray<T>* running_mean = nullptr;
  xt::xarray<T>* running_var = nullptr;
  xt::xarray<T>* num_batches_tracked = nullptr;

 private:
  std::size_t c_, vbs_;
  BatchNormOptions options_;
  std::vector<BatchStatistics> chunk_stats_;
  xt::xarray<T> scratch_[3];  // the running statistics while a training forward updates them
};

extern template class GhostBatchNorm1d<float>;
extern template class GhostBatchNorm1d<double>;

}  // namespace tapegrad
