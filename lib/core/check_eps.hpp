#pragma once
// Internal: the one check of a normalization's eps, shared by the norm ops and the modules
// that hold an eps (LayerNorm, BatchNorm1d, SequenceBatchNorm, LNRNN, BNRNN). Modules check it
// in their constructor, not only through the op: their forward binds weight and bias before
// calling the op, so an error from the op would leave those nodes on the tape.
#include <cmath>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad::detail {

// Throws ValueError naming `who` and the value unless eps is finite and >= 0.
inline void check_eps(const char* who, double eps) {
  if (!(eps >= 0) || !std::isfinite(eps)) {
    throw ValueError(std::string(who) + ": eps must be finite and >= 0, got " + std::to_string(eps));
  }
}

}  // namespace tapegrad::detail
