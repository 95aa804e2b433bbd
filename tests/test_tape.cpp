#include "support.hpp"

namespace tg = tapegrad;
using Vars = std::vector<tg::Var<double>>;

TEST_CASE("backward of a small expression gives the hand-computed derivatives") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0}, true);
  auto y = t.input(xt::xarray<double>{3.0}, true);
  auto z = x * y + tg::exp(x) / y;  // dz/dx = y + e^x / y, dz/dy = x - e^x / y^2
  t.backward(z);
  CHECK(t.grad(x)(0) == Approx(3.0 + std::exp(2.0) / 3.0));
  CHECK(t.grad(y)(0) == Approx(2.0 - std::exp(2.0) / 9.0));
}

TEST_CASE("a value used twice receives the sum of both gradient paths") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{3.0}, true);
  auto y = x * x * x;  // dy/dx = 3 x^2 = 27
  t.backward(y);
  CHECK(t.grad(x)(0) == Approx(27.0));
}

TEST_CASE("a second backward through a freed tape throws a StateError and changes no gradient") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{2.0});
  auto x = t.input(xt::xarray<double>{3.0});
  auto loss = t.param(w) * x;
  t.backward(loss);
  CHECK(w.grad()(0) == 3.0);
  CHECK_THROWS_WITH(t.backward(loss), Catch::Contains("second time") && Catch::Contains("retain_graph"));
  CHECK_THROWS_AS(t.backward(loss), tg::StateError);
  CHECK(w.grad()(0) == 3.0);
}

TEST_CASE("retain_graph allows a second backward, and parameter grads accumulate like PyTorch") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{2.0});
  auto x = t.input(xt::xarray<double>{3.0}, true);
  auto loss = t.param(w) * x * x;
  t.backward(loss, tg::BackwardOptions{true});
  t.backward(loss);
  CHECK(w.grad()(0) == 18.0);   // 2 * x^2
  CHECK(t.grad(x)(0) == 24.0);  // leaf grads accumulate too: 2 * (2 w x)
  w.zero_grad();
  CHECK(w.grad()(0) == 0.0);
}

TEST_CASE("backward on a non-scalar output needs an upstream gradient of its shape") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}}, true);
  auto y = x * x;
  CHECK_THROWS_WITH(t.backward(y), Catch::Contains("(2, 2)") && Catch::Contains("upstream"));
  CHECK_THROWS_AS(t.backward(y, xt::xarray<double>{1.0, 1.0}), tg::ShapeError);
  t.backward(y, xt::xarray<double>{{1.0, 0.0}, {0.0, 2.0}});
  CHECK(t.grad(x) == xt::xarray<double>{{2.0, 0.0}, {0.0, 16.0}});
}

TEST_CASE("backward(out, upstream) reads the upstream in place and keeps no copy as out's grad") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{1.0, 2.0, 3.0}, true);
  auto h = x * x;
  auto y = h * 3.0;
  // A temporary upstream: the tape must not hold on to it after backward returns.
  t.backward(y, xt::xarray<double>{1.0, -1.0, 0.5}, tg::BackwardOptions{true});
  CHECK(t.grad(x) == xt::xarray<double>{6.0, -12.0, 9.0});  // 6 x * upstream
  CHECK(t.grad(h) == xt::xarray<double>{3.0, -3.0, 1.5});   // interior grads are kept
  CHECK_FALSE(t.has_grad(y));
  CHECK_THROWS_AS(t.grad(y), tg::StateError);
  CHECK_THROWS_WITH(t.grad(y), Catch::Contains("upstream you passed") && Catch::Contains("index 2"));
  // A second backward (retained graph) through y's producer from a scalar root works as usual,
  // and afterwards y's grad is the one that pass computed.
  auto s = tg::sum(y);
  t.backward(s);
  CHECK(t.grad(y) == xt::xarray<double>{1.0, 1.0, 1.0});
  CHECK(t.grad(x) == xt::xarray<double>{12.0, 0.0, 27.0});  // accumulated: + 6 x
  // The scalar form still keeps the root's grad (1).
  CHECK(t.grad(s)(0) == 1.0);
  // A leaf given as out accumulates the upstream into its grad, as before.
  auto leaf = t.input(xt::xarray<double>{1.0, 1.0}, true);
  t.backward(leaf, xt::xarray<double>{2.0, 3.0});
  t.backward(leaf, xt::xarray<double>{2.0, 3.0});
  CHECK(t.grad(leaf) == xt::xarray<double>{4.0, 6.0});
}

TEST_CASE("input_view binds an array without a copy, and backward detects a reallocated array") {
  xt::xarray<double> data{{1.0, 2.0}, {3.0, 4.0}};
  tg::Tape<double> t;
  auto x = t.input_view(data, true);
  CHECK(&t.value(x) == &data);  // the same array, not a copy
  CHECK(t.info(x.index()).op == "input_view");
  auto loss = tg::sum(x * x);
  t.backward(loss, tg::BackwardOptions{true});
  CHECK(t.grad(x) == xt::xarray<double>{{2.0, 4.0}, {6.0, 8.0}});
  // Without requires_grad it is a constant, as input() is.
  auto c = t.input_view(data);
  CHECK_FALSE(t.requires_grad(c));
  // Resizing the array after recording: the next backward throws and changes no gradient.
  data.resize({4});
  CHECK_THROWS_AS(t.backward(loss), tg::StateError);
  CHECK_THROWS_WITH(t.backward(loss),
                    Catch::Contains("input_view") && Catch::Contains("(2, 2)") && Catch::Contains("(4)"));
  CHECK(t.grad(x) == xt::xarray<double>{{2.0, 4.0}, {6.0, 8.0}});
  // reset() forgets the binding; a new one binds the array as it is now.
  t.reset();
  auto x2 = t.input_view(data, true);
  t.backward(tg::sum(x2 * 2.0));
  CHECK(t.grad(x2) == xt::xarray<double>{2.0, 2.0, 2.0, 2.0});
}

TEST_CASE("backward on an output that does not require grad is a StateError") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{1.0});
  CHECK_THROWS_AS(t.backward(x * x), tg::StateError);
}

TEST_CASE("ops under NoGradGuard record no backward and do not require grad") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{1.0}, true);
  {
    tg::NoGradGuard guard;
    CHECK_FALSE(tg::grad_enabled());
    auto y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(t.node(y.index()).backward == nullptr);
  }
  CHECK(tg::grad_enabled());
  CHECK((x * x).requires_grad());
}

TEST_CASE("detach cuts the graph: no gradient flows through a detached value") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0}, true);
  auto y = t.detach(x) * x;  // d/dx treats the detached copy as a constant: 2
  t.backward(y);
  CHECK(t.grad(x)(0) == 2.0);
}

TEST_CASE("a Var from another tape or from before reset is a StateError, and the tape is unchanged") {
  tg::Tape<float> t1, t2;
  auto a = t1.input(xt::xarray<float>{1.0f});
  auto b = t2.input(xt::xarray<float>{1.0f});
  CHECK_THROWS_WITH(a + b, Catch::Contains("different tape"));
  CHECK(t1.size() == 1);
  t1.reset();
  CHECK_THROWS_WITH(a.value(), Catch::Contains("reset"));
  tg::Var<float> empty;
  CHECK_THROWS_AS(empty.value(), tg::StateError);
}

TEST_CASE("changing a parameter in place between forward and backward is detected") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{2.0});
  auto loss = t.param(w) * t.param(w);
  w.value(0) = 5.0;
  w.bump();
  CHECK_THROWS_WITH(t.backward(loss), Catch::Contains("modified in place"));
  CHECK(w.grad()(0) == 0.0);
}

TEST_CASE("reset keeps node buffers: a repeated step allocates no new tape memory") {
  tg::Tape<float> t;
  tg::Parameter<float> w(xt::xarray<float>::from_shape({8, 8}));
  w.value.fill(0.5f);
  auto step = [&] {
    t.reset();
    auto x = t.input(xt::xarray<float>(xt::ones<float>({8, 8})));
    auto y = tg::exp(x * t.param(w)) + x;
    t.backward(y, xt::xarray<float>(xt::ones<float>({8, 8})));
  };
  step();
  const auto bytes = t.bytes_allocated();
  for (int i = 0; i < 10; ++i) step();
  CHECK(t.bytes_allocated() == bytes);
  CHECK(t.size() == 5);
}

TEST_CASE("anomaly mode names the op that produced NaN in forward") {
  tg::Tape<double> t;
  t.set_detect_anomaly(true);
  auto x = t.input(xt::xarray<double>{-1.0, 4.0}, true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::log(x),
                    Catch::Contains("'log'") && Catch::Contains("tape index 1") && Catch::Contains("(2)"));
  CHECK_THROWS_AS(tg::log(x), tg::NumericalError);
  CHECK(t.size() == before);
}

TEST_CASE("anomaly mode names the op whose backward produced NaN") {
  tg::Tape<double> t;
  t.set_detect_anomaly(true);
  auto x = t.input(xt::xarray<double>{0.0}, true);
  auto y = tg::sqrt(x) * 0.0;  // forward finite (0); backward of sqrt at 0 is 0 * inf = NaN
  CHECK_THROWS_WITH(t.backward(y), Catch::Contains("backward of 'sqrt'"));
}

TEST_CASE("without anomaly mode a NaN passes silently, as in PyTorch") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{-1.0}, true);
  auto y = tg::log(x);
  CHECK(std::isnan(y.item()));
}

TEST_CASE("describe prints the tape as a table and to_dot exports Graphviz") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{{1.0, 2.0}});
  auto x = t.input(xt::xarray<double>{{3.0, 4.0}});
  auto y = tg::exp(x * t.param(w));
  (void)y;
  const std::string table = t.describe();
  CHECK_THAT(table, Catch::Contains("index") && Catch::Contains("param (parameter)") &&
                        Catch::Contains("exp") && Catch::Contains("(1, 2)") && Catch::Contains("0,1"));
  const std::string dot = t.to_dot();
  CHECK_THAT(dot,
             Catch::StartsWith("digraph tape") && Catch::Contains("n0 -> n2") && Catch::Contains("n2 -> n3"));
  const auto info = t.info(2);
  CHECK(info.op == "mul");
  CHECK(info.parents == std::vector<std::uint32_t>{0, 1});
  CHECK(info.requires_grad);
}

TEST_CASE("gradcheck catches a wrong backward and reports the worst element") {
  // A deliberately wrong op: forward y = x^2, backward claims dy/dx = x.
  auto wrong_square = [](tg::Tape<double>& t, const Vars& v) {
    auto r = t.record("wrong_square", {v[0]});
    r.out() = t.value(v[0]) * t.value(v[0]);
    return r.finish([](tg::BackwardCtx<double>& c) { c.accumulate(0, c.grad() * c.input(0)); });
  };
  const std::vector<xt::xarray<double>> in = {xt::xarray<double>{1.0, 2.0, 3.0}};
  const auto r = tg::gradcheck(wrong_square, in);
  CHECK_FALSE(r.ok);
  CHECK(r.position == 2);  // the largest error is at x = 3
  CHECK(r.analytic == Approx(3.0));
  CHECK(r.numeric == Approx(6.0));
  CHECK_THAT(r.message, Catch::Contains("FAILED"));
  tg::GradcheckOptions fast;
  fast.fast_mode = true;
  CHECK_FALSE(tg::gradcheck(wrong_square, in, fast).ok);
  CHECK_FALSE(tg::taylor_test(wrong_square, in).ok);
}

TEST_CASE("gradcheck, fast mode and the Taylor test pass on a correct composite function") {
  auto f = [](tg::Tape<double>&, const Vars& v) { return tg::exp(v[0] * v[1]) / (v[0] * v[0] + 1.0); };
  const std::vector<xt::xarray<double>> in = {tgtest::randn({3, 4}, 7), tgtest::randn({4}, 8)};
  CHECK_GRADCHECK(f, in);
  tg::GradcheckOptions fast;
  fast.fast_mode = true;
  CHECK(tg::gradcheck(f, in, fast).ok);
  const auto taylor = tg::taylor_test(f, in);
  INFO(taylor.message);
  CHECK(taylor.ok);
  for (double order : taylor.orders) CHECK(order > 1.8);
}

namespace {

// A custom op with more saved state than the built-in ops: y = c1 x + c2 x^2 + ... + c5 x^5,
// saving the powers x^0..x^4 (five arrays) and the coefficients (five scalars) for backward
// dy/dx = sum_k k c_k x^(k-1).
enum class PolySaved : std::size_t { x0, x1, x2, x3, x4, count };
enum class PolyScalar : std::size_t { c1, c2, c3, c4, c5, count };
enum class PolyInt : std::size_t { degree, count };
constexpr PolySaved kPowers[] = {PolySaved::x0, PolySaved::x1, PolySaved::x2, PolySaved::x3, PolySaved::x4};
constexpr PolyScalar kCoefs[] = {PolyScalar::c1, PolyScalar::c2, PolyScalar::c3, PolyScalar::c4,
                                 PolyScalar::c5};

template <class T>
tg::Var<T> poly5(const tg::Var<T>& x) {
  tg::Tape<T>& t = tg::Tape<T>::of("poly5", {x});
  auto r = t.record("poly5", {x});
  const xt::xarray<T>& xv = t.value(x);
  xt::xarray<T>& y = r.out(xv.shape());
  y.fill(T(0));
  xt::xarray<T>& x0 = r.save(PolySaved::x0);            // must stay valid across the later saves
  if (x0.shape() != xv.shape()) x0.resize(xv.shape());  // in place: a reused slot keeps its buffer
  x0.fill(T(1));
  for (std::size_t k = 1; k <= 5; ++k) {
    const xt::xarray<T> next = r.save(kPowers[k - 1]) * xv;  // x^k
    if (k < 5) r.save(kPowers[k]) = next;
    const double c = 0.5 * static_cast<double>(k) - 1.0;
    r.set_scalar(kCoefs[k - 1], c);
    y += static_cast<T>(c) * next;
  }
  const bool x0_kept = x0 == xt::ones<T>(xv.shape());
  CHECK(x0_kept);
  r.set_int(PolyInt::degree, 5);
  return r.finish([](tg::BackwardCtx<T>& c) {
    xt::xarray<T> d = xt::zeros<T>(c.input(0).shape());
    for (std::size_t k = 1; k <= static_cast<std::size_t>(c.int_at(PolyInt::degree)); ++k) {
      d += static_cast<T>(static_cast<double>(k) * c.scalar(kCoefs[k - 1])) * c.saved(kPowers[k - 1]);
    }
    c.accumulate(0, c.grad() * d);
  });
}

}  // namespace

TEST_CASE("a node holds as many saved arrays and scalars as its op names, and backward reads them") {
  auto f = [](tg::Tape<double>&, const Vars& v) { return poly5(v[0]); };
  const std::vector<xt::xarray<double>> in = {tgtest::randn({3, 4}, 21)};
  CHECK_GRADCHECK(f, in);

  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0}, true);
  auto y = poly5(x);
  CHECK(t.node(y.index()).saved.size() == 5);
  CHECK(t.node(y.index()).scalars.size() == 5);
  // y = -0.5 x + 0 x^2 + 0.5 x^3 + x^4 + 1.5 x^5, y' = -0.5 + 1.5 x^2 + 4 x^3 + 7.5 x^4
  CHECK(y.value()(0) == Approx(-1.0 + 4.0 + 16.0 + 48.0));
  t.backward(y);
  CHECK(x.grad()(0) == Approx(-0.5 + 6.0 + 32.0 + 120.0));
}

TEST_CASE("slot reuse after reset keeps five saved arrays, scalars and ints without reallocating") {
  tg::Tape<float> t;
  const xt::xarray<float> xin = tgtest::randn<float>({4, 6}, 22);
  // A slot holds poly5 (5 saved arrays), layer_norm (3 and an int list) and a sum.
  auto step = [&] {
    t.reset();
    auto x = t.input_view(xin, true);
    auto y = tg::layer_norm(poly5(x), tg::Var<float>(), tg::Var<float>(), 1);
    t.backward(tg::sum(y * y));
  };
  // What each node's saved state lives in: any reallocation changes one of these pointers.
  auto buffers = [&] {
    std::vector<const void*> p;
    for (std::size_t i = 0; i < t.size(); ++i) {
      const auto& n = t.node(i);
      p.push_back(n.saved.data());
      p.push_back(n.scalars.data());
      p.push_back(n.ints.data());
      for (const auto& s : n.saved) p.push_back(s.data());
    }
    return p;
  };
  step();
  step();
  const auto before = buffers();
  const auto bytes = t.bytes_allocated();
  REQUIRE(t.node(1).saved.size() == 5);
  for (int i = 0; i < 5; ++i) step();
  CHECK(buffers() == before);
  CHECK(t.bytes_allocated() == bytes);
}

TEST_CASE("gradcheck's message gives the largest absolute and relative errors over all entries") {
  // y = x^2 elementwise: the off-diagonal Jacobian entries are 0 vs 0, which the message must
  // not present as the worst entry of a pass.
  auto square = [](tg::Tape<double>&, const Vars& v) { return v[0] * v[0]; };
  const std::vector<xt::xarray<double>> in = {xt::xarray<double>{0.3, -1.7, 2.9}};
  const auto ok = tg::gradcheck(square, in);
  INFO(ok.message);
  REQUIRE(ok.ok);
  CHECK(ok.checked == 9);
  CHECK(ok.rel_entries == 3);                             // the diagonal: numeric 2x != 0
  CHECK(ok.max_rel_at.position == ok.max_rel_at.output);  // ... so the relative error is there
  CHECK(ok.max_abs_error == std::abs(ok.max_abs_at.analytic - ok.max_abs_at.numeric));
  CHECK(ok.max_abs_error < 1e-6);
  CHECK_THAT(ok.message, Catch::StartsWith("gradcheck passed (9 Jacobian entries); max abs error "));
  CHECK_THAT(ok.message, Catch::Contains("; max rel error "));
  CHECK_THAT(ok.message, !Catch::Contains("worst"));

  // A wrong backward, dy/dx = x instead of 2x: |diff| is x, relative error 1/2 everywhere.
  auto wrong_square = [](tg::Tape<double>& t, const Vars& v) {
    auto r = t.record("wrong_square", {v[0]});
    r.out() = t.value(v[0]) * t.value(v[0]);
    return r.finish([](tg::BackwardCtx<double>& c) { c.accumulate(0, c.grad() * c.input(0)); });
  };
  const auto bad = tg::gradcheck(wrong_square, {xt::xarray<double>{1.0, 2.0, 3.0}});
  INFO(bad.message);
  REQUIRE_FALSE(bad.ok);
  CHECK(bad.max_abs_error == Approx(3.0));
  CHECK(bad.max_abs_at.position == 2);
  CHECK(bad.max_rel_error == Approx(0.5));
  CHECK_THAT(
      bad.message,
      Catch::StartsWith(
          "gradcheck FAILED (9 Jacobian entries); worst: input 0, position 2, output 2: analytic 3 vs numeric "));
  CHECK_THAT(bad.message, Catch::Contains("; max abs error "));
  CHECK_THAT(bad.message, Catch::Contains("; max rel error "));
  CHECK_THAT(bad.message, Catch::Contains("tolerance |diff| <= 1e-05 + 0.001 |numeric|"));
}
