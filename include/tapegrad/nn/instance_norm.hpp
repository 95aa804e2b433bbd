#pragma once
// InstanceNorm1d module (torch.nn.InstanceNorm1d, PyTorch 1.13): GroupNorm with one group per
// channel (ops/group_norm.hpp) in training, plus PyTorch's optional running statistics.
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"
#include "tapegrad/ops/group_norm.hpp"

namespace tapegrad {

// torch.nn.InstanceNorm1d's: eps = 1e-5, momentum = 0.1, affine = false,
// track_running_stats = false (the option pieces: nn/norm.hpp).
class InstanceNormOptions : public EpsOption<InstanceNormOptions>,
                            public MomentumOption<InstanceNormOptions>,
                            public AffineOption<InstanceNormOptions, false>,
                            public TrackRunningStatsOption<InstanceNormOptions, false> {};

// torch.nn.InstanceNorm1d(num_features, eps=1e-5, momentum=0.1, affine=False,
// track_running_stats=False) for input (N, C, L): each example's channel is normalized over
// its L values on its own (biased variance), then (affine) y = xhat * weight_c + bias_c.
// With track_running_stats, a training forward also updates, from the per-(example, channel)
// statistics averaged over the batch,
//   running_mean = (1 - m) running_mean + m * mean_n(mean_{n,c})
//   running_var  = (1 - m) running_var  + m * mean_n(var_{n,c} * L / (L - 1))   (unbiased)
// and eval mode then uses the running statistics; without it both modes use the example's own
// statistics. As PyTorch, num_batches_tracked is registered with the running statistics but
// never counted (F.instance_norm does not touch it).
// Errors: ValueError when the example's own statistics are used with L = 1 (PyTorch: "Expected
// more than 1 spatial element when training, got input size ..."); ShapeError for an input that
// is not (N, C, L) with C = num_features, or is empty. Deliberate differences: PyTorch only
// warns for a channel mismatch without affine, and also takes unbatched (C, L) input.
template <class T>
class InstanceNorm1d : public Module<T> {
 public:
  explicit InstanceNorm1d(std::size_t num_features, InstanceNormOptions options = {});
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "InstanceNorm1d"; }
  std::string extra_repr() const override;

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;
  xt::xarray<T>* running_mean = nullptr;  // null without track_running_stats
  xt::xarray<T>* running_var = nullptr;
  xt::xarray<T>* num_batches_tracked = nullptr;

 private:
  std::size_t c_;
  InstanceNormOptions options_;
  GroupStatistics stats_;  // a training forward's, for the running statistics
};

extern template class InstanceNorm1d<float>;
extern template class InstanceNorm1d<double>;

}  // namespace tapegrad
