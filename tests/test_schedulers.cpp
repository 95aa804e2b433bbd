// Schedulers and optimizers refuse bad arguments up front, and a step they refuse changes
// nothing: not the lr, not last_epoch, not a parameter, not the optimizer's state.
#include <cstring>
#include <limits>
#include <typeinfo>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Two parameters with non-zero grads, as after a backward pass.
struct TwoParams {
  tg::Parameter<float> a{tgtest::randn<float>({2, 3}, 1)};
  tg::Parameter<float> b{tgtest::randn<float>({3}, 2)};
  TwoParams() { set_grads(); }
  void set_grads() {
    a.mutable_grad() = tgtest::randn<float>({2, 3}, 3);
    b.mutable_grad() = tgtest::randn<float>({3}, 4);
  }
  std::vector<tg::Parameter<float>*> list() { return {&a, &b}; }
  std::vector<xt::xarray<float>> snapshot() const { return {a.value, a.grad(), b.value, b.grad()}; }
};

// Everything an optimizer step could change: parameters, grads, the optimizer's state and lr.
struct OptimizerSnapshot {
  OptimizerSnapshot(TwoParams& p, tg::Optimizer<float>& o)
      : params(p), opt(o), values(p.snapshot()), state(o.state_dict()), lr(o.lr()) {}
  void check_unchanged() const {
    CHECK((params.snapshot() == values));
    CHECK((opt.state_dict() == state));
    CHECK(opt.lr() == lr);
  }
  TwoParams& params;
  tg::Optimizer<float>& opt;
  std::vector<xt::xarray<float>> values;
  tg::StateDict<float> state;
  double lr;
};

std::unique_ptr<tg::Optimizer<float>> make_optimizer(const std::string& kind, TwoParams& p) {
  if (kind == "SGD") return std::make_unique<tg::SGD<float>>(p.list(), 0.1, tg::SGDOptions{0.9});
  if (kind == "Adam") return std::make_unique<tg::Adam<float>>(p.list(), 0.01);
  if (kind == "AdamW") return std::make_unique<tg::AdamW<float>>(p.list(), 0.01);
  tg::RMSpropOptions o;
  o.momentum = 0.5;
  o.centered = true;
  return std::make_unique<tg::RMSprop<float>>(p.list(), 0.01, o);
}

const char* const kOptimizers[] = {"SGD", "Adam", "AdamW", "RMSprop"};

}  // namespace

// ---- schedulers ------------------------------------------------------------------------------

TEST_CASE(
    "StepLR with a negative, zero, NaN or infinite gamma is a ValueError naming it; the lr is unchanged") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, 2, -0.5); }, {"StepLR", "gamma", "-0.5"});
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, 2, 0.0); }, {"StepLR", "gamma", "0.0"});
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, 2, kNaN); }, {"StepLR", "gamma", "nan"});
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, 2, kInf); }, {"StepLR", "gamma", "inf"});
  CHECK(sgd.lr() == 0.5);
}

TEST_CASE(
    "CosineAnnealingLR with a negative, NaN or infinite eta_min is a ValueError naming it; the lr is unchanged") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  expect_error<tg::ValueError>([&] { tg::CosineAnnealingLR<float>(sgd, 10, -0.1); },
                               {"CosineAnnealingLR", "eta_min", "-0.1"});
  expect_error<tg::ValueError>([&] { tg::CosineAnnealingLR<float>(sgd, 10, kNaN); }, {"eta_min", "nan"});
  expect_error<tg::ValueError>([&] { tg::CosineAnnealingLR<float>(sgd, 10, kInf); }, {"eta_min", "inf"});
  expect_error<tg::ValueError>([&] { tg::CosineAnnealingLR<float>(sgd, 0); }, {"T_max", "0"});
  CHECK(sgd.lr() == 0.5);
}

TEST_CASE("LinearLR with NaN or infinite factors or negative total_iters is a ValueError naming them") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, kNaN); }, {"LinearLR", "start_factor", "nan"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 0.5, kInf); },
                               {"LinearLR", "end_factor", "inf"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 0.5, -0.5); }, {"end_factor", "-0.5"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 1.5); }, {"start_factor", "1.5"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 0.5, 1.0, -2); }, {"total_iters", "-2"});
  CHECK(sgd.lr() == 0.5);
}

TEST_CASE(
    "a scheduler step whose lr the optimizer refuses throws and leaves last_epoch and the lr unchanged") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  // 0.5 * (1e200)^2 overflows to infinity at the second step.
  tg::StepLR<float> sched(sgd, 1, 1e200);
  sched.step();
  CHECK(sched.last_epoch() == 1);
  CHECK(sgd.lr() == Approx(0.5e200));
  expect_error<tg::ValueError>([&] { sched.step(); }, {"SGD", "learning rate", "inf"});
  CHECK(sched.last_epoch() == 1);
  CHECK(sgd.lr() == Approx(0.5e200));
  expect_error<tg::ValueError>([&] { sched.step(); }, {"learning rate", "inf"});  // still refused
  CHECK(sched.last_epoch() == 1);
}

TEST_CASE("lr_at of a negative epoch is a ValueError naming the scheduler and the epoch") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  tg::StepLR<float> step(sgd, 2);
  tg::CosineAnnealingLR<float> cosine(sgd, 10);
  tg::LinearLR<float> linear(sgd);
  expect_error<tg::ValueError>([&] { step.lr_at(-1); }, {"StepLR", "epoch", "-1"});
  expect_error<tg::ValueError>([&] { cosine.lr_at(-3); }, {"CosineAnnealingLR", "epoch", "-3"});
  expect_error<tg::ValueError>([&] { linear.lr_at(-5); }, {"LinearLR", "epoch", "-5"});
  CHECK(linear.lr_at(0) == Approx(0.5 / 3));
}

// ---- optimizer arguments -----------------------------------------------------------------------

TEST_CASE("an infinite learning rate is a ValueError at construction, in set_lr and in load_state_dict") {
  TwoParams p;
  for (const char* kind : kOptimizers) {
    INFO(kind);
    auto opt = make_optimizer(kind, p);
    opt->step();
    OptimizerSnapshot s(p, *opt);
    expect_error<tg::ValueError>([&] { opt->set_lr(kInf); }, {kind, "learning rate", "inf"});
    expect_error<tg::ValueError>([&] { opt->set_lr(-kInf); }, {kind, "learning rate", "-inf"});
    expect_error<tg::ValueError>([&] { opt->set_lr(kNaN); }, {kind, "learning rate", "nan"});
    auto state = opt->state_dict();
    state["lr"] = xt::xarray<float>(std::numeric_limits<float>::infinity());
    expect_error<tg::ValueError>([&] { opt->load_state_dict(state); }, {kind, "learning rate", "inf"});
    s.check_unchanged();
  }
  expect_error<tg::ValueError>([&] { tg::SGD<float>(p.list(), kInf); }, {"SGD", "learning rate", "inf"});
  expect_error<tg::ValueError>([&] { tg::RMSprop<float>(p.list(), kInf); },
                               {"RMSprop", "learning rate", "inf"});
}

TEST_CASE(
    "SGD with an infinite momentum or weight decay, or a dampening outside [0, 1], is a ValueError naming it") {
  TwoParams p;
  expect_error<tg::ValueError>([&] { tg::SGD<float>(p.list(), 0.1, tg::SGDOptions{kInf}); },
                               {"SGD", "momentum", "inf"});
  expect_error<tg::ValueError>(
      [&] {
        tg::SGD<float>(p.list(), 0.1, tg::SGDOptions{0.9, 0, kInf});
      },
      {"SGD", "weight_decay", "inf"});
  expect_error<tg::ValueError>(
      [&] {
        tg::SGD<float>(p.list(), 0.1, tg::SGDOptions{0.9, kNaN});
      },
      {"SGD", "dampening", "nan"});
  expect_error<tg::ValueError>(
      [&] {
        tg::SGD<float>(p.list(), 0.1, tg::SGDOptions{0.9, -0.5});
      },
      {"SGD", "dampening", "-0.5"});
  expect_error<tg::ValueError>(
      [&] {
        tg::SGD<float>(p.list(), 0.1, tg::SGDOptions{0.9, 2.0});
      },
      {"SGD", "dampening", "2.0"});
}

TEST_CASE(
    "Adam with an infinite eps or weight decay and RMSprop with alpha above 1 or an infinite eps are ValueErrors") {
  TwoParams p;
  tg::AdamOptions a;
  a.eps = kInf;
  expect_error<tg::ValueError>([&] { tg::Adam<float>(p.list(), 1e-3, a); }, {"Adam", "epsilon", "inf"});
  tg::AdamWOptions w = tg::AdamW<float>::default_options();
  w.weight_decay = kInf;
  expect_error<tg::ValueError>([&] { tg::AdamW<float>(p.list(), 1e-3, w); },
                               {"AdamW", "weight_decay", "inf"});
  tg::AdamOptions b;
  b.beta2 = kNaN;
  expect_error<tg::ValueError>([&] { tg::Adam<float>(p.list(), 1e-3, b); },
                               {"Adam", "beta parameter at index 1", "nan"});
  tg::RMSpropOptions r;
  r.alpha = 1.5;
  expect_error<tg::ValueError>([&] { tg::RMSprop<float>(p.list(), 1e-2, r); }, {"RMSprop", "alpha", "1.5"});
  tg::RMSpropOptions e;
  e.eps = kInf;
  expect_error<tg::ValueError>([&] { tg::RMSprop<float>(p.list(), 1e-2, e); }, {"RMSprop", "epsilon", "inf"});
  tg::RMSpropOptions m;
  m.momentum = kNaN;
  expect_error<tg::ValueError>([&] { tg::RMSprop<float>(p.list(), 1e-2, m); },
                               {"RMSprop", "momentum", "nan"});
}

// ---- optimizer steps are all or nothing --------------------------------------------------------

TEST_CASE(
    "every optimizer's step with one grad of the wrong shape throws and moves no parameter and no state") {
  for (const char* kind : kOptimizers) {
    INFO(kind);
    TwoParams p;
    auto opt = make_optimizer(kind, p);
    opt->step();  // state exists now
    p.set_grads();
    p.b.mutable_grad() = xt::ones<float>({4});
    OptimizerSnapshot s(p, *opt);
    expect_error<tg::StateError>([&] { opt->step(); }, {kind, "parameter 1", "value (3)", "grad (4)"});
    s.check_unchanged();  // parameter 0, which was fine, did not move either
  }
}

TEST_CASE(
    "every optimizer's step after a parameter was reshaped under its state is a StateError that changes nothing") {
  // The state (momentum, moments) was created for a (3) parameter that is now (5): updating
  // would read and write the state past its end.
  for (const char* kind : kOptimizers) {
    INFO(kind);
    TwoParams p;
    auto opt = make_optimizer(kind, p);
    opt->step();
    p.b.value = tgtest::randn<float>({5}, 9);
    p.b.zero_grad();
    p.b.mutable_grad() = tgtest::randn<float>({5}, 10);
    p.a.mutable_grad() = tgtest::randn<float>({2, 3}, 11);
    OptimizerSnapshot s(p, *opt);
    expect_error<tg::StateError>([&] { opt->step(); }, {kind, "parameter 1", "value (5)", "has shape (3)"});
    s.check_unchanged();
  }
}

TEST_CASE(
    "a NaN gradient does not throw in any optimizer: it reaches only its own parameter, as in PyTorch") {
  for (const char* kind : kOptimizers) {
    INFO(kind);
    TwoParams p;
    auto opt = make_optimizer(kind, p);
    p.b.mutable_grad()(1) = std::numeric_limits<float>::quiet_NaN();
    opt->step();
    CHECK(xt::all(xt::isfinite(p.a.value)));
    CHECK(std::isnan(p.b.value(1)));
  }
}
