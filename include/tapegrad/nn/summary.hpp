#pragma once
// summary(model, input_shape): the model's layers with their output shapes and parameter counts,
// laid out as torchinfo.summary(model, input_size) prints them:
//
//   ==========================================================================================
//   Layer (type:depth-idx)                   Output Shape              Param #
//   ==========================================================================================
//   Sequential                               [32, 10]                  --
//   ├─Linear: 1-1                            [32, 64]                  192
//   ├─LayerNorm: 1-2                         [32, 64]                  128
//   ...
//   ==========================================================================================
//   Total params: 1,010
//   Trainable params: 1,010
//   Non-trainable params: 0
//   ==========================================================================================
//
// It runs one forward of the model on zeros of `input_shape` (zeros are valid indices for an
// Embedding too), in eval mode (an EvalModeGuard: no module's mode changes, BatchNorm's running
// statistics are used and not updated, Dropout is the identity) and without recording gradients,
// on a scratch tape of its own: the model, its buffers and its gradients are unchanged.
//
// Rows are the module tree, depth first, as Module::to_string() prints it; "Param #" counts the
// parameters a module holds itself ("--" for none: a container's are on its children's rows),
// the totals count each parameter once (a tied weight too); trainable ones require grad. A
// module's output shape is the one of its last call through operator() (model(t, x), what
// torchinfo's hooks see) or as a layer of a Sequential; a module that the forward reaches only
// through another method (say lstm.run(t, x) in a custom model) shows "--": call it as
// lstm(t, x) to see its output. Differences from torchinfo: no batch dimension is added or
// assumed (give the whole shape), and no memory estimates.
//
// An input shape the model refuses throws the model's own error (ShapeError ...), with the
// model unchanged; an input shape with more than 2^63 - 1 elements is a ShapeError naming it.
#include <ostream>
#include <string>

#include "tapegrad/core/shape.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad {

template <class T>
std::string summary(Module<T>& model, const Shape& input_shape);

extern template std::string summary<float>(Module<float>&, const Shape&);
extern template std::string summary<double>(Module<double>&, const Shape&);

}  // namespace tapegrad
