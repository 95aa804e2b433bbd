#include "tapegrad/nn/ghost_batch_norm.hpp"

#include <string>
#include <vector>

#include "tapegrad/ops/shape.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"

namespace tapegrad {

template <class T>
GhostBatchNorm1d<T>::GhostBatchNorm1d(std::size_t num_features, std::size_t virtual_batch_size,
                                      BatchNormOptions options)
    : c_(num_features), vbs_(virtual_batch_size), options_(options) {
  checked_size("GhostBatchNorm1d: num_features", num_features);
  checked_size("GhostBatchNorm1d: virtual_batch_size", virtual_batch_size);
  if (num_features == 0 || virtual_batch_size == 0) {
    throw ValueError("GhostBatchNorm1d: num_features and virtual_batch_size must be positive, got " +
                     std::to_string(num_features) + " and " + std::to_string(virtual_batch_size));
  }
  if (!options_.track_running_stats()) {
    throw ValueError(
        "GhostBatchNorm1d: track_running_stats must be true (eval mode uses the running statistics)");
  }
  detail::check_eps("GhostBatchNorm1d", options_.eps());
  detail::check_momentum("GhostBatchNorm1d", options_.momentum());
  if (options_.affine()) this->register_affine(Shape{num_features}, weight, bias);
  this->register_running_stats(num_features, running_mean, running_var, num_batches_tracked);
}

template <class T>
Var<T> GhostBatchNorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  detail::check_channel_input("GhostBatchNorm1d", xs, c_);
  const detail::AffineVars<T> a = detail::bind_affine(t, weight, bias);
  const detail::RunningStats<T> running{running_mean, running_var, num_batches_tracked};
  if (!this->is_training()) return detail::normalize_with_running_stats(x, a, running, options_.eps());
  const std::size_t n = xs[0], len = xs.size() == 3 ? xs[2] : 1;
  // torch.chunk(ceil(N / vbs)): chunks of ceil(N / k) examples, the last one the remainder.
  const std::size_t k = n == 0 ? 1 : (n + vbs_ - 1) / vbs_;
  const std::size_t size = n == 0 ? 0 : (n + k - 1) / k;
  const std::size_t last = n == 0 ? 0 : n - (n - 1) / size * size;
  if (n == 0 || last * len < 2) {
    throw detail::too_few_values_error("GhostBatchNorm1d", xs,
                                       " split into chunks of " + std::to_string(size) + " (the last of " +
                                           std::to_string(last) + ") examples for virtual_batch_size " +
                                           std::to_string(vbs_));
  }
  if (size == n) {  // one chunk: BatchNorm1d
    chunk_stats_.resize(1);
    Var<T> y = batch_norm(x, a.weight, a.bias, options_.eps(), chunk_stats_[0]);
    detail::update_running_stats<T>("GhostBatchNorm1d", t, running, options_.momentum(), chunk_stats_[0],
                                    n * len);
    return y;
  }
  const std::vector<Var<T>> chunks = split(x, size, 0);
  chunk_stats_.resize(chunks.size());
  std::vector<Var<T>> outs;
  outs.reserve(chunks.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    outs.push_back(batch_norm(chunks[i], a.weight, a.bias, options_.eps(), chunk_stats_[i]));
  }
  Var<T> y = concat(outs, 0);
  // Every chunk's forward ran (none threw): now the updates, one per chunk, in order, on copies
  // of the statistics first, so that an anomaly-mode error in a later chunk changes nothing.
  scratch_[0] = *running_mean;
  scratch_[1] = *running_var;
  scratch_[2] = *num_batches_tracked;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    detail::update_running_stats<T>("GhostBatchNorm1d", t, {&scratch_[0], &scratch_[1], &scratch_[2]},
                                    options_.momentum(), chunk_stats_[i], t.shape(chunks[i])[0] * len);
  }
  *running_mean = scratch_[0];
  *running_var = scratch_[1];
  *num_batches_tracked = scratch_[2];
  return y;
}

template <class T>
std::string GhostBatchNorm1d<T>::extra_repr() const {
  return std::to_string(c_) + ", virtual_batch_size=" + std::to_string(vbs_) +
         ", eps=" + python_float(options_.eps()) +
         ", momentum=" + (options_.momentum() ? python_float(*options_.momentum()) : std::string("None")) +
         ", affine=" + (options_.affine() ? "True" : "False");
}

template class GhostBatchNorm1d<float>;
template class GhostBatchNorm1d<double>;

}  // namespace tapegrad
