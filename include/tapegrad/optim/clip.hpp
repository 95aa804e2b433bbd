#pragma once
#include <limits>
#include <vector>

#include "tapegrad/core/parameter.hpp"

namespace tapegrad {

// torch.nn.utils.clip_grad_norm_: the total norm of all grads (as if concatenated), then every
// grad is multiplied by min(1, max_norm / (total + 1e-6)). Returns the total norm.
// norm_type may be +infinity (max |g|). A non-finite total throws ValueError when
// error_if_nonfinite, else the grads are scaled anyway (NaN propagates), as in PyTorch 1.13.
template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& params, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

}  // namespace tapegrad
