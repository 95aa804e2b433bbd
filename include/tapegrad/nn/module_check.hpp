#pragma once
// Gradient checking of a whole module: the gradient with respect to its input and to every
// parameter, in double precision (see check/gradcheck.hpp for the method).
//
// A module in training mode may change its buffers in forward (BatchNorm's running
// statistics). The check restores every buffer before each of its forward passes and after it
// finishes, so checking a module never disturbs its state.
#include "tapegrad/check/gradcheck.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad {

// Result's `input` index: 0 is the module input, k >= 1 is the k-th of named_parameters();
// the message names it.
GradcheckResult gradcheck_module(Module<double>& module, const xt::xarray<double>& input,
                                 const GradcheckOptions& options = {});

}  // namespace tapegrad
