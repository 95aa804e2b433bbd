#pragma once
// Replaying the normalization fixtures (tests/fixtures/<name>.json, generated from PyTorch 1.13
// by the gen_*.py beside them) on tapegrad: every case of a file, each result compared with
// PyTorch's to a tolerance, the worst difference kept. test_batch_renorm.cpp (BatchRenorm1d,
// GhostBatchNorm1d), test_instance_norm.cpp, test_group_norm.cpp, test_rms_norm.cpp.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "support.hpp"

namespace normfx {

namespace tg = tapegrad;
using tgtest::max_err;
using tgtest::to_array;

// One case's comparisons: (key, got) checks max_err(got, the case's `key`) < tol.
class Comparison {
 public:
  Comparison(const nlohmann::json& c, double tol) : c_(c), tol_(tol) {}
  void operator()(const std::string& key, const xt::xarray<double>& got) {
    const double e = max_err(got, to_array(c_.at(key)));
    INFO(key << ": max abs difference " << e);
    CHECK(e < tol_);
    worst_ = std::max(worst_, e);
  }
  double worst() const { return worst_; }

 private:
  const nlohmann::json& c_;
  double tol_;
  double worst_ = 0;
};

// Runs check(case, compare) on every case of fixture `file`, checks that there were `expected`
// cases, and prints "<label> max abs diff <worst>" under TAPEGRAD_PRINT_FIXTURE_DIFFS.
template <class Check>
void check_cases(const std::string& file, std::size_t expected, const std::string& label, Check&& check,
                 double tol = 1e-12) {
  const auto fx = tgtest::load_fixture(file);
  std::size_t seen = 0;
  double worst = 0;
  for (const auto& c : fx.at("cases")) {
    Comparison compare(c, tol);
    check(c, compare);
    worst = std::max(worst, compare.worst());
    ++seen;
  }
  CHECK(seen == expected);
  if (std::getenv("TAPEGRAD_PRINT_FIXTURE_DIFFS")) std::cout << label << " max abs diff " << worst << "\n";
}

// The case's array `key` as a leaf of t that requires grad.
inline tg::Var<double> leaf(tg::Tape<double>& t, const nlohmann::json& c, const std::string& key) {
  return t.input(to_array(c.at(key)), true);
}

// y of the case's x (a leaf of t): compares y with "out", backpropagates "upstream" and compares
// x's gradient with "grad_x".
inline void check_out_and_grad_x(Comparison& compare, const nlohmann::json& c, tg::Tape<double>& t,
                                 const tg::Var<double>& x, const tg::Var<double>& y) {
  compare("out", y.value());
  t.backward(y, to_array(c.at("upstream")));
  compare("grad_x", t.grad(x));
}

// A module with weight and bias (null without affine): the case's values, when affine.
template <class M>
void load_affine(M& m, const nlohmann::json& c) {
  if (!m.weight) return;
  m.weight->value = to_array(c.at("weight"));
  m.bias->value = to_array(c.at("bias"));
}

// A training forward of the module on the case's "x" (after one on "x1" when the case has one:
// its output is not compared, it moves the running statistics): "out", "grad_x" and, when
// affine, "grad_weight" and "grad_bias". Then the running statistics, when the module keeps them.
template <class M>
void check_training_step(Comparison& compare, const nlohmann::json& c, M& m, tg::Tape<double>& t) {
  if (c.contains("x1")) {
    m(t, t.input(to_array(c.at("x1"))));
    t.reset();
  }
  const tg::Var<double> x = leaf(t, c, "x");
  check_out_and_grad_x(compare, c, t, x, m(t, x));
  if (m.weight) {
    compare("grad_weight", m.weight->grad());
    compare("grad_bias", m.bias->grad());
  }
  if (m.running_mean) {
    compare("running_mean", *m.running_mean);
    compare("running_var", *m.running_var);
  }
}

// The module in eval mode on the case's "x_eval" (t reset first), compared with "out_eval".
template <class M>
void check_eval(Comparison& compare, const nlohmann::json& c, M& m, tg::Tape<double>& t) {
  m.eval();
  t.reset();
  compare("out_eval", m(t, t.input(to_array(c.at("x_eval")))).value());
}

}  // namespace normfx
