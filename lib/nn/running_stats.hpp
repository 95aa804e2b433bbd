#pragma once
// Internal to lib/nn: BatchNorm's running-statistics update, for the modules that keep
// BatchNorm's statistics (BatchNorm1d, BatchRenorm1d, GhostBatchNorm1d): one arithmetic, so that
// the others reproduce BatchNorm1d's bits (the rest they share: channel_norm_common.hpp):
//   running_mean = (1 - m) running_mean + m * batch_mean
//   running_var  = (1 - m) running_var  + m * batch_var * n / (n - 1)     (n values per channel)
//   num_batches_tracked += 1         (m = momentum, or 1 / num_batches_tracked when none)
#include <cmath>
#include <optional>
#include <string>

#include "tapegrad/ops/norm.hpp"

namespace tapegrad::detail {

template <class T>
struct RunningStats {
  xt::xarray<T>* mean;
  xt::xarray<T>* var;
  xt::xarray<T>* count;
};

// In anomaly mode an update to NaN or Inf is a NumericalError naming `who`, before anything is written.
template <class T>
void update_running_stats(const char* who, const Tape<T>& t, const RunningStats<T>& rs,
                          std::optional<double> momentum, const BatchStatistics& batch,
                          std::size_t per_channel) {
  T& count = (*rs.count)();
  const double m = momentum ? *momentum : 1.0 / (static_cast<double>(count) + 1);
  const double n = static_cast<double>(per_channel);
  const double unbias = n / (n - 1);
  T* rm = rs.mean->data();
  T* rv = rs.var->data();
  const std::size_t ch = rs.mean->size();
  const auto new_var = [&](std::size_t c) {
    return static_cast<T>((1 - m) * rv[c] + m * batch.var[c] * unbias);
  };
  for (std::size_t c = 0; c < ch && t.detect_anomaly(); ++c) {
    if (std::isfinite(new_var(c))) continue;
    throw NumericalError("anomaly: " + std::string(who) + "'s running_var for channel " + std::to_string(c) +
                         " would become NaN or Inf (batch variance " + std::to_string(batch.var[c]) +
                         " in double)");
  }
  count += T(1);
  for (std::size_t c = 0; c < ch; ++c) {
    rm[c] = static_cast<T>((1 - m) * rm[c] + m * batch.mean[c]);
    rv[c] = new_var(c);
  }
}

}  // namespace tapegrad::detail
