#include "channel_norm_common.hpp"

namespace tapegrad::detail {

void check_num_features(const char* who, std::size_t num_features) {
  checked_size((std::string(who) + ": num_features").c_str(), num_features);
  if (num_features == 0) throw ValueError(std::string(who) + ": num_features must be positive");
}

void check_momentum(const char* who, std::optional<double> momentum) {
  if (momentum && !(*momentum >= 0 && *momentum <= 1)) {
    throw ValueError(std::string(who) + ": momentum must be in [0, 1], got " + std::to_string(*momentum));
  }
}

void check_channel_input(const char* who, const Shape& xs, std::size_t channels, ChannelInput accepted) {
  const bool rank_ok = xs.size() == 3 || (xs.size() == 2 && accepted == ChannelInput::flat_or_sequence);
  if (rank_ok && xs[1] == channels) return;
  const std::string c = std::to_string(channels);
  const std::string expected = accepted == ChannelInput::flat_or_sequence
                                   ? "(N, " + c + ") or (N, " + c + ", L)"
                                   : "(N, " + c + ", L)";
  throw ShapeError(std::string(who) + ": expected input of shape " + expected + ", got input of shape " +
                   shape_str(xs));
}

std::size_t values_per_channel(const Shape& xs) { return xs[0] * (xs.size() == 3 ? xs[2] : 1); }

StateError too_few_values_error(const char* who, const Shape& xs, const std::string& tail) {
  return StateError(std::string(who) +
                    ": Expected more than 1 value per channel when training, got input size " +
                    shape_str(xs) + tail);
}

void check_values_per_channel(const char* who, const Shape& xs) {
  if (values_per_channel(xs) < 2)
    throw too_few_values_error(who, xs, ". Use eval() or a batch of at least 2.");
}

}  // namespace tapegrad::detail
