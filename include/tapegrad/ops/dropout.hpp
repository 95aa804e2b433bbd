#pragma once
#include "tapegrad/core/random.hpp"
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// Inverted dropout (torch.nn.functional.dropout): each element is kept with probability
// 1 - p and scaled by 1 / (1 - p), or zeroed; p = 1 zeroes everything. The mask comes from
// `gen`, so a seeded generator gives the same mask every run. Not training: identity.
//   y = x * m / (1 - p);   dL/dx = dL/dy * m / (1 - p)
template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen);

}  // namespace tapegrad
