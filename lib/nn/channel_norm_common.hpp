#pragma once
// Internal to lib/nn: what the modules that normalize an (N, C) or (N, C, L) input per channel
// share, so that they check alike and say the same words: BatchNorm1d (norm.cpp),
// BatchRenorm1d, GhostBatchNorm1d, GroupNorm, InstanceNorm1d (that one takes (N, C, L) only).
// A new module of that family (a SyncBatchNorm, say) should be made of these pieces too:
//   constructor   check_num_features, check_eps (../core/check_eps.hpp), check_momentum
//   forward       check_channel_input, then (training on batch statistics)
//                 check_values_per_channel or too_few_values_error, bind_affine, and in eval
//                 mode normalize_with_running_stats; the running statistics' update after a
//                 training forward is update_running_stats (running_stats.hpp)
// Every check throws before anything is recorded or changed.
#include <cstddef>
#include <optional>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/ops/norm.hpp"

#include "running_stats.hpp"

namespace tapegrad::detail {

// ---- constructor ----

// num_features of module `who`: a ValueError "<who>: num_features must be positive" for 0,
// checked_size's error (named "<who>: num_features") for a negative size passed as size_t.
void check_num_features(const char* who, std::size_t num_features);

// A ValueError "<who>: momentum must be in [0, 1], got <m>" unless m (when given) is in [0, 1].
void check_momentum(const char* who, std::optional<double> momentum);

// ---- forward ----

// The ranks a module takes: (N, C) or (N, C, L), or (N, C, L) only.
enum class ChannelInput { flat_or_sequence, sequence };

// A ShapeError "<who>: expected input of shape (N, C) or (N, C, L), got input of shape <xs>"
// (C the number) unless xs has an accepted rank and xs[1] == channels.
void check_channel_input(const char* who, const Shape& xs, std::size_t channels,
                         ChannelInput accepted = ChannelInput::flat_or_sequence);

// N * L (L = 1 for (N, C)): the values each channel's batch statistics are taken over.
std::size_t values_per_channel(const Shape& xs);

// The StateError for training with too few values per channel:
// "<who>: Expected more than 1 value per channel when training, got input size <xs>" + tail.
StateError too_few_values_error(const char* who, const Shape& xs, const std::string& tail);

// Throws too_few_values_error with the tail ". Use eval() or a batch of at least 2." when the
// input has fewer than 2 values per channel (PyTorch's words).
void check_values_per_channel(const char* who, const Shape& xs);

// weight and bias on the tape (each undefined without affine: the parameter is null).
template <class T>
struct AffineVars {
  Var<T> weight;
  Var<T> bias;
};

// Binds weight, then bias.
template <class T>
AffineVars<T> bind_affine(Tape<T>& t, Parameter<T>* weight, Parameter<T>* bias) {
  AffineVars<T> a;
  if (weight) a.weight = t.param(*weight);
  if (bias) a.bias = t.param(*bias);
  return a;
}

// The eval forward of the BatchNorm family: x normalized with the running statistics, then the
// affine transform (batch_norm_eval).
template <class T>
Var<T> normalize_with_running_stats(const Var<T>& x, const AffineVars<T>& affine,
                                    const RunningStats<T>& stats, double eps) {
  return batch_norm_eval(x, affine.weight, affine.bias, *stats.mean, *stats.var, eps);
}

}  // namespace tapegrad::detail
