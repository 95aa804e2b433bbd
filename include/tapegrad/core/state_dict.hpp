#pragma once
// A state dict: named arrays, as PyTorch's state_dict(). Modules (nn/module.hpp) name their
// parameters and buffers in one, optimizers (optim/optimizer.hpp) their per-parameter state,
// and checkpoints (io/checkpoint.hpp) save and load both. Ordered by name.
#include <map>
#include <string>

#include <xtensor/xarray.hpp>

namespace tapegrad {

template <class T>
using StateDict = std::map<std::string, xt::xarray<T>>;

}  // namespace tapegrad
