#pragma once
// Activation functions, with PyTorch 1.13's defaults and its derivative conventions at kinks
// (relu'(0) = 0, leaky_relu'(0) = negative_slope, elu'(0) = alpha).
//
// softmax and log_softmax work along any axis of any rank, subtract the lane's maximum first
// (finite for logits of any magnitude), and accumulate their sums in double.
#include <cstddef>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// torch.nn.functional.gelu's `approximate`: the exact erf form or the tanh approximation.
enum class GeluApprox { None, Tanh };

// ---- elementwise ----
// max(x, 0); NaN stays NaN, as in PyTorch.
template <class T>
Var<T> relu(const Var<T>& x);
// x if x > 0, else negative_slope * x.
template <class T>
Var<T> leaky_relu(const Var<T>& x, scalar_t<T> negative_slope = 0.01);
template <class T>
Var<T> tanh(const Var<T>& x);
// 1 / (1 + e^-x)
template <class T>
Var<T> sigmoid(const Var<T>& x);
// x Φ(x) (None) or 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))) (Tanh).
template <class T>
Var<T> gelu(const Var<T>& x, GeluApprox approximate = GeluApprox::None);
// x if x > 0, else alpha (e^x - 1).
template <class T>
Var<T> elu(const Var<T>& x, scalar_t<T> alpha = 1);
// log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's linear region).
template <class T>
Var<T> softplus(const Var<T>& x, scalar_t<T> beta = 1, scalar_t<T> threshold = 20);

// ---- along an axis ----
// e^x / Σ e^x along `axis` (negative counts from the end; a 0-d input is one lane of one).
template <class T>
Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis = -1);
// x - log Σ e^x along `axis`.
template <class T>
Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis = -1);

}  // namespace tapegrad
