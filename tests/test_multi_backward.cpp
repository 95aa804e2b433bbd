// tape.backward({out, h_n}, {g_out, g_h}): torch.autograd.backward of several outputs.
#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::randn;

namespace {

using Arrays = std::vector<xt::xarray<double>>;

double maxdiff(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  return tgtest::max_abs_diff(a, b);
}

// Records x -> LSTM -> (output, h_n) on a fresh tape, lets `run_backward` backpropagate, and
// returns dL/dx followed by every parameter's gradient.
template <class F>
Arrays lstm_grads(tg::LSTM<double>& lstm, const xt::xarray<double>& xv, F&& run_backward) {
  lstm.zero_grad();
  tg::Tape<double> t;
  auto x = t.input(xv, true);
  auto r = lstm.run(t, x);
  run_backward(t, r.output, r.h_n);
  Arrays out{t.grad(x)};
  for (auto* p : lstm.parameters()) out.push_back(p->grad());
  return out;
}

void check_close(const Arrays& a, const Arrays& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("gradient " << i);
    REQUIRE(a[i].shape() == b[i].shape());
    CHECK(maxdiff(a[i], b[i]) < tol);
  }
}

}  // namespace

TEST_CASE("multi-output backward: an LSTM's output and h_n at once equal the sum of separate backwards") {
  tg::Generator gen(0);
  tg::LSTM<double> lstm(3, 4, tg::LSTMOptions().num_layers(2), gen);
  const auto xv = randn<double>({5, 2, 3}, 1);
  const auto g_out = randn<double>({5, 2, 4}, 2);
  const auto g_h = randn<double>({2, 2, 4}, 3);
  const Arrays both = lstm_grads(lstm, xv, [&](tg::Tape<double>& t, const auto& out, const auto& h_n) {
    t.backward({out, h_n}, {g_out, g_h});
  });
  // The sum of two separate backwards (the first keeps the graph for the second).
  const Arrays separate = lstm_grads(lstm, xv, [&](tg::Tape<double>& t, const auto& out, const auto& h_n) {
    t.backward(out, g_out, tg::BackwardOptions{true});
    t.backward(h_n, g_h);
  });
  check_close(both, separate, 1e-12);
  // The gradient of the scalar L = sum(out * g_out) + sum(h_n * g_h), one root as usual.
  const Arrays scalar = lstm_grads(lstm, xv, [&](tg::Tape<double>& t, const auto& out, const auto& h_n) {
    t.backward(tg::sum(out * t.constant(g_out)) + tg::sum(h_n * t.constant(g_h)));
  });
  check_close(both, scalar, 1e-12);
  // And numerically: gradcheck's own comparison of that scalar's gradient with central
  // differences, the multi-output one equal to it above.
  const auto r = tg::gradcheck(
      [&](tg::Tape<double>& t, const std::vector<tg::Var<double>>& v) {
        auto o = lstm.run(t, v[0]);
        return tg::sum(o.output * t.constant(g_out)) + tg::sum(o.h_n * t.constant(g_h));
      },
      {xv});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("multi-output backward: one output feeding another, a repeated output, a leaf and a Parameter") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{2.0, -1.0});
  auto x = t.input(xt::xarray<double>{0.5, 3.0}, true);
  auto h = x * t.param(w);  // h feeds y: its gradient is its seed plus what y sends back
  auto y = tg::exp(h);
  const xt::xarray<double> gh{1.0, 2.0}, gy{0.5, -1.0};
  t.backward({y, h, h, x}, {gy, gh, gh, xt::xarray<double>{10.0, 20.0}});
  const xt::xarray<double> dh = gy * xt::exp(xt::xarray<double>{1.0, -3.0}) + 2.0 * gh;
  CHECK(maxdiff(t.grad(h), dh) < 1e-14);
  CHECK(maxdiff(t.grad(y), gy) < 1e-14);  // an output keeps its gradient
  CHECK(maxdiff(t.grad(x), dh * w.value + xt::xarray<double>{10.0, 20.0}) < 1e-14);
  CHECK(maxdiff(w.grad(), dh * xt::xarray<double>{0.5, 3.0}) < 1e-14);
  // A Parameter as an output: its seed adds into its grad, and a single output works as well.
  tg::Tape<double> t2;
  auto pw = t2.param(w);
  t2.backward(std::vector<tg::Var<double>>{pw}, Arrays{xt::xarray<double>{1.0, 1.0}});
  CHECK(maxdiff(w.grad(), dh * xt::xarray<double>{0.5, 3.0} + 1.0) < 1e-14);
  // The graph is freed as by any backward; retain_graph keeps it.
  expect_error<tg::StateError>([&] { t.backward({y}, {gy}); }, {"second time"});
}

TEST_CASE(
    "multi-output backward with mismatched lists, a mis-shaped seed or a foreign Var is refused; nothing changes") {
  tg::Tape<double> t, other;
  auto x = t.input(xt::xarray<double>{1.0, 2.0}, true);
  auto a = tg::exp(x);
  auto b = tg::sum(a);
  auto c = t.input(xt::xarray<double>{1.0}, false);
  auto f = other.input(xt::xarray<double>{1.0}, true);
  tgtest::TapeSnapshot<double> snap(t);
  const xt::xarray<double> g2{1.0, 1.0}, g1{1.0};
  expect_error<tg::ValueError>([&] { t.backward({a, b}, {g2}); }, {"2 outputs and 1 gradients"});
  expect_error<tg::ValueError>([&] { t.backward(std::vector<tg::Var<double>>{}, Arrays{}); },
                               {"0 outputs and 0 gradients"});
  expect_error<tg::ShapeError>(
      [&] {
        t.backward({a, b}, {g2, g2});
      },
      {"gradient 1 has shape (2)", "output 1 'sum'", "shape ()"});
  expect_error<tg::StateError>(
      [&] {
        t.backward({a, f}, {g2, g1});
      },
      {"backward: output 1", "different tape"});
  expect_error<tg::StateError>([&] { t.backward({a, tg::Var<double>()}, {g2, g1}); }, {"output 1", "empty"});
  expect_error<tg::StateError>([&] { t.backward(std::vector<tg::Var<double>>{c}, Arrays{g1}); },
                               {"output 0", "does not require grad"});
  CHECK_FALSE(t.has_grad(x));
  CHECK_FALSE(t.has_grad(a));
  snap.check_unchanged();
  t.backward({a, b}, {g2, xt::xarray<double>(1.0)});  // still usable: nothing was freed
  CHECK(maxdiff(t.grad(x), 2.0 * xt::exp(xt::xarray<double>{1.0, 2.0})) < 1e-12);
}
