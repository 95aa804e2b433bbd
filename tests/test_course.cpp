// The solutions of the exercises in docs/course.md, one TEST_CASE per exercise (named by it), so
// that every solution the course promises compiles against the current API and passes its check.
#include <cmath>

#include "support.hpp"

namespace tg = tapegrad;
using Vars = std::vector<tg::Var<double>>;

namespace {

// ---- exercise 5.1: GELU (erf form) as your own op ----
// y = x Φ(x), Φ(x) = (1 + erf(x / √2)) / 2;  dy/dx = Φ(x) + x φ(x), φ(x) = e^(-x²/2) / √(2π)
template <class T>
tg::Var<T> my_gelu(const tg::Var<T>& x) {
  tg::Tape<T>& t = tg::Tape<T>::of("my_gelu", {x});
  const xt::xarray<T>& xv = t.value(x);
  auto r = t.record("my_gelu", {x});
  xt::xarray<T>& y = r.out(xv.shape());
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const T v = xv.data()[i];
    y.data()[i] = v * T(0.5) * (T(1) + std::erf(v / std::sqrt(T(2))));
  }
  return r.finish([](tg::BackwardCtx<T>& c) {
    const T* in = c.input(0).data();
    const T* g = c.grad().data();
    tg::GradWrite<T> dx = c.input_grad_write(0);
    for (std::size_t i = 0; i < c.grad().size(); ++i) {
      const T v = in[i];
      const T cdf = T(0.5) * (T(1) + std::erf(v / std::sqrt(T(2))));
      const T pdf = std::exp(T(-0.5) * v * v) / T(2.50662827463100050242);  // φ(x), 2.5066... = √(2π)
      dx.data[i] = tg::beta_add(dx.beta, dx.data[i], g[i] * (cdf + v * pdf));
    }
  });
}

// ---- exercise 8.1: softplus(x, beta, threshold) with two saved scalars ----
enum class MySoftplusScalar : std::size_t { beta, threshold, count };

template <class T>
tg::Var<T> my_softplus(const tg::Var<T>& x, tg::scalar_t<T> beta, tg::scalar_t<T> threshold) {
  tg::Tape<T>& t = tg::Tape<T>::of("my_softplus", {x});
  if (!(beta > 0) || !std::isfinite(beta)) {
    throw tg::ValueError("my_softplus: beta must be positive and finite, got " + std::to_string(beta));
  }
  const xt::xarray<T>& xv = t.value(x);
  auto r = t.record("my_softplus", {x});
  xt::xarray<T>& y = r.out(xv.shape());
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const T v = xv.data()[i];
    y.data()[i] = v * beta > threshold ? v : std::log1p(std::exp(beta * v)) / beta;
  }
  r.set_scalar(MySoftplusScalar::beta, beta);
  r.set_scalar(MySoftplusScalar::threshold, threshold);
  return r.finish([](tg::BackwardCtx<T>& c) {
    const T saved_beta = static_cast<T>(c.scalar(MySoftplusScalar::beta));
    const T saved_threshold = static_cast<T>(c.scalar(MySoftplusScalar::threshold));
    xt::xarray<T>& dx = c.input_grad(0);  // zero-filled or holding other gradient: add
    for (std::size_t i = 0; i < dx.size(); ++i) {
      const T v = c.input(0).data()[i];
      const T slope = v * saved_beta > saved_threshold ? T(1) : T(1) / (T(1) + std::exp(-saved_beta * v));
      dx.data()[i] += c.grad().data()[i] * slope;
    }
  });
}

// ---- exercise 8.2: a two-input op, hypot(a, b) = sqrt(a² + b²), a and b of the same shape ----
template <class T>
tg::Var<T> my_hypot(const tg::Var<T>& a, const tg::Var<T>& b) {
  tg::Tape<T>& t = tg::Tape<T>::of("my_hypot", {a, b});
  if (t.shape(a) != t.shape(b)) {
    throw tg::ShapeError("my_hypot: shapes " + tg::shape_str(t.shape(a)) + " and " +
                         tg::shape_str(t.shape(b)) + " differ");
  }
  auto r = t.record("my_hypot", {a, b});
  r.out(t.shape(a)) = xt::sqrt(t.value(a) * t.value(a) + t.value(b) * t.value(b));
  return r.finish([](tg::BackwardCtx<T>& c) {
    // d/da = a / y, d/db = b / y; only for the inputs that want a gradient.
    for (std::size_t k = 0; k < 2; ++k) {
      if (c.needs_grad(k)) c.accumulate(k, c.grad() * c.input(k) / c.output());
    }
  });
}

// ---- exercise 3.1: your own Module ----
class TwoLayer : public tg::Module<float> {
 public:
  TwoLayer(std::size_t hidden, tg::Generator& gen)
      : fc1_(
            register_module("fc1", std::make_shared<tg::Linear<float>>(2, hidden, tg::LinearOptions(), gen))),
        fc2_(register_module("fc2",
                             std::make_shared<tg::Linear<float>>(hidden, 2, tg::LinearOptions(), gen))) {}
  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) override {
    return fc2_(t, tg::tanh(fc1_(t, x)));
  }
  std::string type_name() const override { return "TwoLayer"; }

 private:
  tg::Linear<float>& fc1_;
  tg::Linear<float>& fc2_;
};

}  // namespace

TEST_CASE("course exercise 1.1: the hand-derived gradients of x*y + exp(x)/y agree with the tape") {
  for (double x0 : {-1.0, 0.5, 2.0}) {
    tg::Tape<double> t;
    auto x = t.input(xt::xarray<double>{x0}, true);
    auto y = t.input(xt::xarray<double>{-1.5}, true);
    t.backward(x * y + tg::exp(x) / y);
    const double y0 = -1.5;
    CHECK(t.grad(x)(0) == Approx(y0 + std::exp(x0) / y0).epsilon(1e-14));
    CHECK(t.grad(y)(0) == Approx(x0 - std::exp(x0) / (y0 * y0)).epsilon(1e-14));
  }
}

TEST_CASE("course exercise 2.1: RMSNorm from primitive ops agrees with rms_norm, values and gradients") {
  tg::Generator gen(3);
  const xt::xarray<double> xv = tg::normal_array<double>({4, 6}, 0, 2, gen);
  const xt::xarray<double> wv = tg::normal_array<double>({6}, 1, 0.3, gen);
  const xt::xarray<double> up = tg::normal_array<double>({4, 6}, 0, 1, gen);
  const double eps = 1e-6;
  tg::Tape<double> t;
  auto x = t.input(xv, true), w = t.input(wv, true);
  auto by_hand = x / tg::sqrt(tg::mean(x * x, {-1}, true) + eps) * w;
  auto fused = tg::rms_norm(x, w, 1, eps);
  CHECK(xt::allclose(by_hand.value(), fused.value(), 1e-12, 1e-12));
  t.backward(by_hand, up);
  const xt::xarray<double> gx_hand = t.grad(x), gw_hand = t.grad(w);
  tg::Tape<double> t2;
  auto x2 = t2.input(xv, true), w2 = t2.input(wv, true);
  t2.backward(tg::rms_norm(x2, w2, 1, eps), up);
  CHECK(xt::allclose(gx_hand, t2.grad(x2), 1e-10, 1e-12));
  CHECK(xt::allclose(gw_hand, t2.grad(w2), 1e-10, 1e-12));
}

TEST_CASE("course exercise 3.1: a Module of your own names its parameters and learns the moons") {
  tg::Generator gen(0);
  TwoLayer net(16, gen);
  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  const auto data = tg::moons<float>(200, 0.1, 0);
  tg::Adam<float> opt(net.parameters(), 0.02);
  tg::Tape<float> tape;
  for (int step = 0; step < 200; ++step) {
    tape.reset();
    auto loss = tg::cross_entropy(net(tape, tape.input(data.inputs())), data.labels());
    opt.zero_grad();
    tape.backward(loss);
    opt.step();
  }
  CHECK(tg::classification_accuracy(net, data) > 0.95);
}

TEST_CASE("course exercise 4.1: mean squared error from primitive ops agrees with mse_loss") {
  tg::Generator gen(1);
  const xt::xarray<double> pv = tg::normal_array<double>({5, 3}, 0, 1, gen);
  const xt::xarray<double> yv = tg::normal_array<double>({5, 3}, 0, 1, gen);
  tg::Tape<double> t;
  auto p = t.input(pv, true), y = t.constant(yv);
  auto d = p - y;
  auto by_hand = tg::mean(d * d);
  t.backward(by_hand);
  const xt::xarray<double> g_hand = t.grad(p);
  tg::Tape<double> t2;
  auto p2 = t2.input(pv, true);
  auto fused = tg::mse_loss(p2, t2.constant(yv));
  t2.backward(fused);
  CHECK(by_hand.item() == Approx(fused.item()).epsilon(1e-14));
  CHECK(xt::allclose(g_hand, t2.grad(p2), 1e-13, 1e-15));
  CHECK(xt::allclose(g_hand, 2.0 * (pv - yv) / 15.0, 1e-13, 1e-15));
}

TEST_CASE("course exercise 5.1: GELU written as an op passes gradcheck and agrees with gelu") {
  const xt::xarray<double> xv{{-4.0, -1.3, -0.2, 0.0}, {0.4, 1.1, 2.5, 7.0}};
  const auto r = tg::gradcheck([](tg::Tape<double>&, const Vars& v) { return my_gelu(v[0]) * v[0]; }, {xv});
  INFO(r.message);
  CHECK(r.ok);
  tg::Tape<double> t;
  auto x = t.input(xv);
  CHECK(xt::allclose(my_gelu(x).value(), tg::gelu(x).value(), 1e-14, 1e-15));
}

TEST_CASE("course exercise 5.1: gradcheck rejects GELU with a wrong backward") {
  // The same op with Φ(x) alone as its derivative (the x φ(x) term forgotten): must fail.
  const auto wrong = [](tg::Tape<double>& t, const Vars& v) {
    const xt::xarray<double> y = my_gelu(v[0]).value();  // (record nothing while a Recorder is open)
    auto r = t.record("wrong_gelu", {v[0]});
    r.out(t.shape(v[0])) = y;
    return r.finish([](tg::BackwardCtx<double>& c) {
      c.accumulate(0, c.grad() * 0.5 * (1.0 + xt::erf(c.input(0) / std::sqrt(2.0))));
    });
  };
  CHECK_FALSE(tg::gradcheck(wrong, {xt::xarray<double>{-1.0, 0.5, 2.0}}).ok);
}

TEST_CASE("course exercise 8.1: softplus with saved beta and threshold agrees with softplus and gradchecks") {
  // Points on both sides of the linear region (beta x > threshold), none at the switch itself.
  const xt::xarray<double> xv{{-3.0, -0.5, 0.0, 0.7}, {1.9, 2.6, 4.0, 9.0}};
  for (double beta : {1.0, 2.5}) {
    const double threshold = 5;
    const auto r =
        tg::gradcheck([beta, threshold](tg::Tape<double>&,
                                        const Vars& v) { return my_softplus(v[0], beta, threshold) * v[0]; },
                      {xv});
    INFO(r.message);
    CHECK(r.ok);
    tg::Tape<double> t;
    auto x = t.input(xv);
    CHECK(xt::allclose(my_softplus(x, beta, threshold).value(), tg::softplus(x, beta, threshold).value(),
                       1e-14, 1e-15));
  }
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{1.0f}, true);
  CHECK_THROWS_AS(my_softplus(x, 0.0f, 20.0f), tg::ValueError);
  CHECK(t.size() == 1);
}

TEST_CASE("course exercise 8.2: a two-input op skips the input that needs no gradient") {
  const xt::xarray<double> av{{3.0, -1.0}, {0.5, 2.0}}, bv{{4.0, 2.0}, {-1.5, 0.3}};
  const auto r =
      tg::gradcheck([](tg::Tape<double>&, const Vars& v) { return my_hypot(v[0], v[1]) * v[1]; }, {av, bv});
  INFO(r.message);
  CHECK(r.ok);
  tg::Tape<double> t;
  auto a = t.input(av, true), b = t.constant(bv);
  t.backward(tg::sum(my_hypot(a, b)));
  CHECK(t.grad(a)(0, 0) == Approx(0.6));
  CHECK_FALSE(t.has_grad(b));
  CHECK_THROWS_AS(my_hypot(a, t.input(xt::xarray<double>{1.0})), tg::ShapeError);
}
