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

// One compared entry: where it is and its two values.
struct GradcheckEntry {
  std::size_t input = 0;     // input index,
  std::size_t position = 0;  // flat position inside that input (0 in fast mode),
  std::size_t output = 0;    // flat position in the output (full mode; 0 in fast mode)
  double analytic = 0;
  double numeric = 0;
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
  // The largest |analytic - numeric| over all entries, and the largest relative error
  // |analytic - numeric| / |numeric| over the entries whose numeric value is not 0 (entries with
  // numeric 0 have only an absolute error); NaN when an entry is NaN. rel_entries counts those.
  double max_abs_error = 0;
  GradcheckEntry max_abs_at;
  double max_rel_error = 0;
  GradcheckEntry max_rel_at;
  std::size_t rel_entries = 0;
  // Human-readable summary: the largest absolute and relative errors and where they are, and
  // on a failure first the entry that fails worst (the largest excess over the tolerance).
  std::string message;
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
