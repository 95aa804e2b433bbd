// The forgotten tape.reset() check (core/warning.hpp): a training loop that never resets its
// tape gets one warning naming the node count and bytes (or a StateError when asked), while
// legitimate uses of one tape never trigger it.
#include <memory>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using Catch::Contains;
using tgtest::expect_error;

namespace {

// Captures warnings and sets the check for the scope of a test; restores both after.
struct Capture {
  std::vector<std::string> warnings;
  tg::WarningHandler previous_handler;
  tg::TapeGrowthCheck previous_check;
  explicit Capture(tg::TapeGrowthCheck check = {}) {
    previous_handler = tg::set_warning_handler([this](const std::string& w) { warnings.push_back(w); });
    previous_check = tg::set_tape_growth_check(check);
  }
  ~Capture() {
    tg::set_warning_handler(previous_handler);
    tg::set_tape_growth_check(previous_check);
  }
};

tg::TapeGrowthCheck check_of(tg::TapeGrowthMode mode, std::size_t sweeps, std::size_t nodes) {
  tg::TapeGrowthCheck c;
  c.mode = mode;
  c.min_sweeps = sweeps;
  c.min_nodes = nodes;
  return c;
}

// One step of a tiny regression: 6 nodes (input, param, matmul, target, mse_loss...).
void step(tg::Tape<double>& t, tg::Parameter<double>& w, tg::SGD<double>& opt, bool reset) {
  if (reset) t.reset();
  auto loss = tg::mse_loss(tg::matmul(t.input(tgtest::randn({4, 3}, 1)), t.param(w)),
                           t.constant(tgtest::randn({4, 1}, 2)));
  opt.zero_grad();
  t.backward(loss);
  opt.step();
}

}  // namespace

TEST_CASE(
    "a training loop that forgets tape.reset() gets one warning naming the nodes, the bytes and reset()") {
  Capture cap;  // the default setting: 10 growing sweeps and 10,000 nodes or 64 MiB
  tg::Parameter<double> w(tgtest::randn({3, 1}, 3));
  tg::SGD<double> opt({&w}, 0.01);
  tg::Tape<double> t;
  std::size_t fired_at = 0;
  for (std::size_t s = 0; s < 2500; ++s) {
    step(t, w, opt, false);
    if (!cap.warnings.empty() && !fired_at) fired_at = t.size();
  }
  REQUIRE(cap.warnings.size() == 1);  // once per tape, not once per step
  const std::string& msg = cap.warnings[0];
  INFO(msg);
  CHECK(fired_at >= 10000);
  CHECK(fired_at < 10100);
  CHECK_THAT(msg, Contains("holds " + std::to_string(fired_at) + " nodes ("));
  CHECK_THAT(msg, Contains(" MB)"));
  CHECK_THAT(msg, Contains("Call tape.reset() at the start of every training step"));
  CHECK_THAT(msg, Contains("without tape.reset()"));
}

TEST_CASE(
    "the tape growth check does not fire for loops that reset, one long graph, retain_graph or gradcheck") {
  // The strictest setting: any backward that finds new nodes on top of an earlier sweep fires.
  Capture cap(check_of(tg::TapeGrowthMode::error, 1, 1));
  tg::Parameter<double> w(tgtest::randn({3, 1}, 3));
  tg::SGD<double> opt({&w}, 0.01);
  tg::Tape<double> t;
  for (int s = 0; s < 50; ++s) step(t, w, opt, true);  // a correct loop

  // An RNN over a long sequence: one graph of 30,000 nodes, one backward.
  t.reset();
  tg::Parameter<double> a(xt::xarray<double>({0.5}));
  auto h = t.input(xt::xarray<double>({1.0}));
  const auto pa = t.param(a);
  for (int i = 0; i < 10000; ++i) h = tg::tanh(h * pa + 0.1);
  t.backward(tg::sum(h));
  CHECK(t.size() > 30000);

  // Several backwards through one graph (retain_graph), and two losses of one graph.
  t.reset();
  auto x = t.input(tgtest::randn({3}, 4), true);
  auto y = tg::exp(x);
  auto l1 = tg::sum(y), l2 = tg::sum(y * y);
  tg::BackwardOptions keep;
  keep.retain_graph = true;
  t.backward(l1, keep);
  t.backward(l1, keep);
  t.backward(l2);

  // gradcheck records on its own tapes.
  const auto f = [](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
    return tg::tanh(v[0] * v[0]);
  };
  CHECK(tg::gradcheck(f, {tgtest::randn({3}, 5)}).ok);
  CHECK(cap.warnings.empty());
}

TEST_CASE(
    "with the error setting, a growing tape's backward is a StateError naming the nodes; nothing changes") {
  Capture cap(check_of(tg::TapeGrowthMode::error, 3, 10));
  tg::Parameter<double> w(tgtest::randn({3, 1}, 3));
  tg::SGD<double> opt({&w}, 0.01);
  tg::Tape<double> t;
  for (int s = 0; s < 3; ++s) step(t, w, opt, false);  // sweeps 0, 1, 2 counted: fine
  const auto w_before = w.value;
  auto loss = tg::mse_loss(tg::matmul(t.input(tgtest::randn({4, 3}, 1)), t.param(w)),
                           t.constant(tgtest::randn({4, 1}, 2)));
  opt.zero_grad();
  expect_error<tg::StateError>([&] { t.backward(loss); },
                               {"holds " + std::to_string(t.size()) + " nodes", "tape.reset()"});
  CHECK((w.grad() == xt::zeros<double>({3, 1})));  // no gradient was written
  CHECK((w.value == w_before));
  // After reset() the same loop is fine again.
  for (int s = 0; s < 5; ++s) step(t, w, opt, true);
  CHECK(cap.warnings.empty());
}

TEST_CASE("set_tape_growth_check with min_sweeps 0 is a ValueError naming it; the setting is unchanged") {
  const tg::TapeGrowthCheck before = tg::tape_growth_check();
  tg::TapeGrowthCheck bad;
  bad.min_sweeps = 0;
  bad.mode = tg::TapeGrowthMode::error;
  expect_error<tg::ValueError>([&] { tg::set_tape_growth_check(bad); }, {"min_sweeps", "got 0"});
  CHECK(tg::tape_growth_check().mode == before.mode);
  CHECK(tg::tape_growth_check().min_sweeps == before.min_sweeps);
}

TEST_CASE("warnings go to the handler that set_warning_handler installs, and an empty one restores stderr") {
  std::vector<std::string> got;
  auto previous = tg::set_warning_handler([&](const std::string& w) { got.push_back(w); });
  tg::emit_warning("hello");
  auto mine = tg::set_warning_handler(previous);
  CHECK(got == std::vector<std::string>{"hello"});
  REQUIRE(mine);
  mine("again");
  CHECK(got.size() == 2);
}
