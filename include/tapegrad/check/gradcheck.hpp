#pragma once
// Gradient checking in double precision, as torch.autograd.gradcheck does it: the analytic
// Jacobian (one backward pass per output element) against central finite differences
// (one pair of forward passes per input element), element by element.
//
// The probes never reduce the output with sum(): for a normalization layer the sum of the
// outputs is constant, so its gradient is zero and a sum-based check passes vacuously.
// Full mode uses unit upstream vectors (the whole Jacobian); fast mode and the Taylor test
// use random upstream weights drawn from their own seed.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// f records its computation on the given tape from the given leaves and returns the output.
using GradcheckFn = std::function<Var<double>(Tape<double>&, const std::vector<Var<double>>&)>;

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step (PyTorch's default)
  double atol = 1e-5;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  // Fast mode checks v^T J u for random u, v instead of every entry of J (PyTorch's
  // fast_mode): one backward and two forwards, whatever the sizes.
  bool fast_mode = false;
  std::uint64_t seed = 0x5eed;  // for fast mode's u and v
  // Which inputs are differentiated; empty = all.
  std::vector<bool> wrt;
};

struct GradcheckResult {
  bool ok = true;
  double worst_excess = 0;   // max of |a - n| - (atol + rtol |n|); <= 0 when ok
  std::size_t input = 0;     // where the worst entry is: input index,
  std::size_t position = 0;  // flat position inside that input,
  std::size_t output = 0;    // flat position in the output (full mode)
  double analytic = 0;
  double numeric = 0;
  std::size_t checked = 0;  // number of Jacobian entries (or projections) compared
  std::string message;      // human-readable summary of the worst entry
  explicit operator bool() const { return ok; }
};

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                          const GradcheckOptions& options = {});

struct TaylorOptions {
  std::vector<double> steps = {1e-1, 5e-2, 2.5e-2, 1.25e-2, 6.25e-3};
  std::uint64_t seed = 0x7a71;
  double min_order = 1.8;  // required convergence order of the first-order remainder
};

struct TaylorResult {
  bool ok = true;
  std::vector<double> steps;
  std::vector<double> errors;  // |phi(h) - phi(0) - h phi'(0)| for each step h
  std::vector<double> orders;  // log2(err(h) / err(h/2)) between consecutive steps
  std::string message;
  explicit operator bool() const { return ok; }
};

// Taylor test: with phi(h) = <w, f(x + h d)> for random d and w, the remainder
// phi(h) - phi(0) - h <grad phi, d> shrinks as O(h^2) when the gradient is right and only as
// O(h) when it is wrong. Remainders at round-off level count as converged.
TaylorResult taylor_test(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                         const TaylorOptions& options = {});

}  // namespace tapegrad
