// Parameter's lazy zero_grad(): O(1), yet every reader sees zeros, and the first backward
// write after it assigns instead of adding (see include/tapegrad/core/parameter.hpp).
#include "support.hpp"

namespace tg = tapegrad;

namespace {
// dL/dW and dL/db of sum(upstream * linear(x, W, b)), by hand: G^T x and the column sums of G.
struct LinearCase {
  xt::xarray<double> x = tgtest::randn({3, 4}, 1);
  xt::xarray<double> up = tgtest::randn({3, 2}, 2);
  tg::Parameter<double> W{tgtest::randn({2, 4}, 3)};
  tg::Parameter<double> b{tgtest::randn({2}, 4)};
  xt::xarray<double> dW() const {
    xt::xarray<double> g = xt::zeros<double>({2, 4});
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t o = 0; o < 2; ++o)
        for (std::size_t k = 0; k < 4; ++k) g(o, k) += up(i, o) * x(i, k);
    return g;
  }
  xt::xarray<double> db() const { return xt::sum(up, {0}); }
  void backward(tg::Tape<double>& t, int uses = 1) {
    t.reset();
    auto xv = t.input(x);
    auto y = tg::linear(xv, t.param(W), t.param(b));
    for (int k = 1; k < uses; ++k) y = y + tg::linear(xv, t.param(W), t.param(b));
    t.backward(y, up);
  }
};
}  // namespace

TEST_CASE("zero_grad is lazy but every reader sees zeros") {
  tg::Parameter<double> p(xt::xarray<double>{1.0, 2.0, 3.0});
  p.mutable_grad() = {7.0, 8.0, 9.0};
  p.zero_grad();
  CHECK(p.grad_is_lazy_zero());
  CHECK(p.grad_shape() == tg::Shape{3});
  CHECK((p.grad() == xt::zeros<double>({3})));  // reading writes the zeros
  CHECK_FALSE(p.grad_is_lazy_zero());
  p.zero_grad();
  p.mutable_grad()(1) = 5.0;  // a write through mutable_grad() starts from zeros too
  CHECK((p.grad() == xt::xarray<double>{0.0, 5.0, 0.0}));
  // A value of a new shape: zero_grad() gives zeros of that shape.
  p.value = xt::ones<double>({2, 2});
  p.zero_grad();
  CHECK(p.grad_shape() == tg::Shape{2, 2});
  CHECK((p.grad() == xt::zeros<double>({2, 2})));
}

TEST_CASE("the first backward after zero_grad assigns the gradient; later ones accumulate") {
  LinearCase c;
  tg::Tape<double> t;
  c.W.mutable_grad().fill(123.0);  // stale values the lazy zero must hide
  c.b.mutable_grad().fill(-4.0);
  c.W.zero_grad();
  c.b.zero_grad();
  c.backward(t);
  CHECK(tgtest::max_abs_diff(c.W.grad(), c.dW()) < 1e-12);
  CHECK(tgtest::max_abs_diff(c.b.grad(), c.db()) < 1e-12);
  c.backward(t);  // no zero_grad in between: PyTorch accumulates
  CHECK(tgtest::max_abs_diff(c.W.grad(), xt::xarray<double>(2.0 * c.dW())) < 1e-12);
  CHECK(tgtest::max_abs_diff(c.b.grad(), xt::xarray<double>(2.0 * c.db())) < 1e-12);
}

TEST_CASE("a parameter used twice in one graph after zero_grad gets the sum of both uses") {
  LinearCase c;
  tg::Tape<double> t;
  c.W.mutable_grad().fill(9.0);
  c.W.zero_grad();
  c.b.zero_grad();
  c.backward(t, 2);  // y = linear(x, W, b) + linear(x, W, b): two param nodes, one Parameter
  CHECK(tgtest::max_abs_diff(c.W.grad(), xt::xarray<double>(2.0 * c.dW())) < 1e-12);
  CHECK(tgtest::max_abs_diff(c.b.grad(), xt::xarray<double>(2.0 * c.db())) < 1e-12);
}

TEST_CASE("anomaly mode and ops that add into the gradient see the lazy zeros") {
  LinearCase c;
  tg::Tape<double> t;
  t.set_detect_anomaly(true);
  c.W.mutable_grad().fill(5.0);
  c.W.zero_grad();
  c.b.zero_grad();
  c.backward(t);
  CHECK(tgtest::max_abs_diff(c.W.grad(), c.dW()) < 1e-12);
  // An op that adds (mul uses input_grad): the stale 5s must not leak in.
  t.set_detect_anomaly(false);
  c.W.mutable_grad().fill(5.0);
  c.W.zero_grad();
  t.reset();
  t.backward(tg::sum(t.param(c.W) * 3.0));
  CHECK((c.W.grad() == xt::xarray<double>(3.0 * xt::ones<double>({2, 4}))));
}

TEST_CASE("an optimizer step after zero_grad without a backward leaves the values unchanged") {
  tg::Parameter<double> p(xt::xarray<double>{1.0, -2.0});
  p.mutable_grad() = {10.0, 10.0};
  tg::SGD<double> opt({&p}, 0.5);
  opt.zero_grad();
  opt.step();
  CHECK((p.value == xt::xarray<double>{1.0, -2.0}));
}
