#include "tapegrad/check/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

namespace tapegrad {

namespace {

std::vector<Var<double>> leaves(Tape<double>& t, const std::vector<xt::xarray<double>>& xs,
                                const std::vector<bool>& wrt) {
  std::vector<Var<double>> vs;
  vs.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) vs.push_back(t.input(xs[i], wrt[i]));
  return vs;
}

xt::xarray<double> evaluate(const GradcheckFn& f, const std::vector<xt::xarray<double>>& xs,
                            const std::vector<bool>& wrt) {
  Tape<double> t;
  NoGradGuard no_grad;
  auto vs = leaves(t, xs, wrt);
  return t.value(f(t, vs));
}

// Gradients of <upstream, f(xs)> with respect to each differentiated input.
std::vector<xt::xarray<double>> vjp(const GradcheckFn& f, const std::vector<xt::xarray<double>>& xs,
                                    const std::vector<bool>& wrt, const xt::xarray<double>& upstream) {
  Tape<double> t;
  auto vs = leaves(t, xs, wrt);
  Var<double> out = f(t, vs);
  std::vector<xt::xarray<double>> grads(xs.size());
  if (!t.requires_grad(out)) {  // f does not depend on any differentiated input: J = 0
    for (std::size_t i = 0; i < xs.size(); ++i) grads[i] = xt::zeros<double>(xs[i].shape());
    return grads;
  }
  t.backward(out, upstream);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    grads[i] =
        (wrt[i] && t.has_grad(vs[i])) ? t.grad(vs[i]) : xt::xarray<double>(xt::zeros<double>(xs[i].shape()));
  }
  return grads;
}

double dot(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}

xt::xarray<double> random_like(const Shape& s, std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  xt::xarray<double> a = xt::xarray<double>::from_shape(s);
  for (auto& v : a) v = n(rng);
  return a;
}

void consider(GradcheckResult& r, const GradcheckOptions& o, std::size_t input, std::size_t pos,
              std::size_t out, double analytic, double numeric) {
  ++r.checked;
  const double excess = std::abs(analytic - numeric) - (o.atol + o.rtol * std::abs(numeric));
  const bool bad = !(excess <= 0);  // NaN counts as a failure
  if (r.checked == 1 || excess > r.worst_excess || (bad && r.ok)) {
    r.worst_excess = excess;
    r.input = input;
    r.position = pos;
    r.output = out;
    r.analytic = analytic;
    r.numeric = numeric;
  }
  if (bad) r.ok = false;
  const GradcheckEntry entry{input, pos, out, analytic, numeric};
  const double abs_err = std::abs(analytic - numeric);
  if (r.checked == 1 || !(abs_err <= r.max_abs_error)) {  // a NaN stays the maximum
    if (!std::isnan(r.max_abs_error)) {
      r.max_abs_error = abs_err;
      r.max_abs_at = entry;
    }
  }
  if (numeric != 0) {
    const double rel = abs_err / std::abs(numeric);
    if (++r.rel_entries == 1 || (!std::isnan(r.max_rel_error) && !(rel <= r.max_rel_error))) {
      r.max_rel_error = rel;
      r.max_rel_at = entry;
    }
  }
}

void describe_entry(std::ostream& os, const GradcheckEntry& e, bool fast) {
  os << "input " << e.input;
  if (!fast) os << ", position " << e.position << ", output " << e.output;
  os << ": analytic " << e.analytic << " vs numeric " << e.numeric;
}

void describe(GradcheckResult& r, const GradcheckOptions& o) {
  std::ostringstream os;
  os.precision(10);
  os << (r.ok ? "gradcheck passed" : "gradcheck FAILED") << " (" << r.checked
     << (o.fast_mode ? " projections" : " Jacobian entries") << ")";
  if (!r.ok) {
    os << "; worst: ";
    describe_entry(os, GradcheckEntry{r.input, r.position, r.output, r.analytic, r.numeric}, o.fast_mode);
    os << " (|diff| " << std::abs(r.analytic - r.numeric) << ", allowed "
       << o.atol + o.rtol * std::abs(r.numeric) << ")";
  }
  os << "; max abs error " << r.max_abs_error << " at ";
  describe_entry(os, r.max_abs_at, o.fast_mode);
  if (r.rel_entries == 0) {
    os << "; no relative error (every numeric value is 0)";
  } else {
    os << "; max rel error " << r.max_rel_error << " at ";
    describe_entry(os, r.max_rel_at, o.fast_mode);
  }
  os << " (tolerance |diff| <= " << o.atol << " + " << o.rtol << " |numeric|)";
  r.message = os.str();
}

// The differentiated inputs, after checking that the options make sense and that there is
// something to check (torch.autograd.gradcheck raises ValueError when no input requires grad:
// a check of nothing must not read as a pass).
std::vector<bool> checked_wrt(const std::vector<xt::xarray<double>>& inputs, const GradcheckOptions& o) {
  if (inputs.empty()) throw ValueError("gradcheck: no inputs given");
  if (!(o.eps > 0 && std::isfinite(o.eps))) {
    throw ValueError("gradcheck: eps must be a positive finite step, got " + std::to_string(o.eps));
  }
  if (!(o.atol >= 0 && o.rtol >= 0 && std::isfinite(o.atol) && std::isfinite(o.rtol))) {
    throw ValueError("gradcheck: atol and rtol must be finite and >= 0, got atol " + std::to_string(o.atol) +
                     ", rtol " + std::to_string(o.rtol));
  }
  std::vector<bool> wrt = o.wrt.empty() ? std::vector<bool>(inputs.size(), true) : o.wrt;
  if (wrt.size() != inputs.size()) {
    throw ValueError("gradcheck: options.wrt has " + std::to_string(wrt.size()) + " entries for " +
                     std::to_string(inputs.size()) + " inputs");
  }
  std::size_t differentiated = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!wrt[i]) continue;
    ++differentiated;
  }
  if (differentiated == 0) {
    throw ValueError("gradcheck: nothing to check: options.wrt differentiates none of the " +
                     std::to_string(inputs.size()) + " inputs");
  }
  return wrt;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                          const GradcheckOptions& o) {
  const std::vector<bool> wrt = checked_wrt(inputs, o);
  const xt::xarray<double> y0 = evaluate(f, inputs, wrt);
  std::vector<xt::xarray<double>> xs = inputs;
  GradcheckResult r;

  if (o.fast_mode) {
    std::mt19937_64 rng(o.seed);
    const xt::xarray<double> v = random_like(y0.shape(), rng);
    const auto grads = vjp(f, xs, wrt, v);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (!wrt[i]) continue;
      const xt::xarray<double> u = random_like(xs[i].shape(), rng);
      const double analytic = dot(grads[i], u);
      const xt::xarray<double> x0 = xs[i];
      xs[i] = x0 + o.eps * u;
      const double plus = dot(v, evaluate(f, xs, wrt));
      xs[i] = x0 - o.eps * u;
      const double minus = dot(v, evaluate(f, xs, wrt));
      xs[i] = x0;
      consider(r, o, i, 0, 0, analytic, (plus - minus) / (2 * o.eps));
    }
    describe(r, o);
    return r;
  }

  // Analytic Jacobian, one row per output element: J[j, :] = grad of y_j.
  const std::size_t m = y0.size();
  std::vector<std::vector<xt::xarray<double>>> rows(m);
  xt::xarray<double> e = xt::zeros<double>(y0.shape());
  for (std::size_t j = 0; j < m; ++j) {
    e.data()[j] = 1;
    rows[j] = vjp(f, xs, wrt, e);
    e.data()[j] = 0;
  }
  // Numeric Jacobian, one column per input element, compared as it is computed.
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!wrt[i]) continue;
    for (std::size_t p = 0; p < xs[i].size(); ++p) {
      double& x = xs[i].data()[p];
      const double x0 = x;
      x = x0 + o.eps;
      const xt::xarray<double> plus = evaluate(f, xs, wrt);
      x = x0 - o.eps;
      const xt::xarray<double> minus = evaluate(f, xs, wrt);
      x = x0;
      for (std::size_t j = 0; j < m; ++j) {
        const double numeric = (plus.data()[j] - minus.data()[j]) / (2 * o.eps);
        consider(r, o, i, p, j, rows[j][i].data()[p], numeric);
      }
    }
  }
  describe(r, o);
  return r;
}

TaylorResult taylor_test(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                         const TaylorOptions& o) {
  if (inputs.empty()) throw ValueError("taylor_test: no inputs given");
  if (o.steps.size() < 2) throw ValueError("taylor_test: needs at least 2 step sizes");
  for (std::size_t k = 0; k < o.steps.size(); ++k) {
    // The orders divide by log(h_k / h_k+1): steps must be positive, finite and distinct.
    const double h = o.steps[k];
    if (!(h > 0 && std::isfinite(h)) || (k > 0 && h == o.steps[k - 1])) {
      throw ValueError("taylor_test: step " + std::to_string(k) + " is " + std::to_string(h) +
                       "; steps must be positive, finite and differ from the previous one");
    }
  }
  if (std::isnan(o.min_order)) throw ValueError("taylor_test: min_order is nan");
  const std::vector<bool> wrt(inputs.size(), true);
  std::mt19937_64 rng(o.seed);
  const xt::xarray<double> y0 = evaluate(f, inputs, wrt);
  const xt::xarray<double> w = random_like(y0.shape(), rng);
  std::vector<xt::xarray<double>> d;
  d.reserve(inputs.size());
  for (const auto& x : inputs) d.push_back(random_like(x.shape(), rng));
  const auto grads = vjp(f, inputs, wrt, w);
  double slope = 0;  // <grad phi, d>
  for (std::size_t i = 0; i < inputs.size(); ++i) slope += dot(grads[i], d[i]);
  const double phi0 = dot(w, y0);

  TaylorResult r;
  r.steps = o.steps;
  for (double h : o.steps) {
    std::vector<xt::xarray<double>> xs;
    for (std::size_t i = 0; i < inputs.size(); ++i) xs.push_back(inputs[i] + h * d[i]);
    r.errors.push_back(std::abs(dot(w, evaluate(f, xs, wrt)) - phi0 - h * slope));
  }
  // Round-off floor: remainders this small carry no information about the order.
  const double floor = 1e-11 * (1 + std::abs(phi0) + std::abs(slope));
  std::ostringstream os;
  os.precision(4);
  os << "taylor test: remainders";
  for (double err : r.errors) os << ' ' << err;
  os << "; orders";
  for (std::size_t k = 0; k + 1 < r.errors.size(); ++k) {
    const double a = r.errors[k], b = r.errors[k + 1];
    if (a < floor || b < floor) {
      r.orders.push_back(2.0);  // exact (linear or quadratic-free) up to round-off
      os << " (round-off)";
      continue;
    }
    const double order = std::log(a / b) / std::log(r.steps[k] / r.steps[k + 1]);
    r.orders.push_back(order);
    os << ' ' << order;
    if (!(order >= o.min_order)) r.ok = false;
  }
  os << (r.ok ? " -> O(h^2), gradient consistent" : " -> NOT O(h^2): gradient wrong");
  r.message = os.str();
  return r;
}

}  // namespace tapegrad
