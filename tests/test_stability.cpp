// Numerical stability at the edges that the per-area tests do not reach: saturated activations
// far out in float, masked (-inf) logits, norms of gradients near float's overflow and
// underflow, long float sums, and optimizer state that rounding could push out of its domain.
// (Logits of magnitude 1e3-1e4, constant LayerNorm/BatchNorm rows and large common offsets are
// covered in test_loss, test_activation, test_norm_ops and test_reduce.)
#include <limits>

#include "support.hpp"

namespace tg = tapegrad;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}

TEST_CASE("activations of float inputs up to 1e30 saturate exactly, with finite gradients") {
  // Far from 0 every activation is either 0, x or a constant, and so is its derivative.
  const xt::xarray<float> x{1e4f, -1e4f, 1e30f, -1e30f};
  struct Case {
    const char* name;
    tg::Var<float> (*f)(const tg::Var<float>&);
    xt::xarray<float> value, grad;
  };
  const std::vector<Case> cases = {
      {"sigmoid", [](const tg::Var<float>& v) { return tg::sigmoid(v); }, {1, 0, 1, 0}, {0, 0, 0, 0}},
      {"tanh", [](const tg::Var<float>& v) { return tg::tanh(v); }, {1, -1, 1, -1}, {0, 0, 0, 0}},
      {"softplus",
       [](const tg::Var<float>& v) { return tg::softplus(v); },
       {1e4f, 0, 1e30f, 0},
       {1, 0, 1, 0}},
      {"elu", [](const tg::Var<float>& v) { return tg::elu(v); }, {1e4f, -1, 1e30f, -1}, {1, 0, 1, 0}},
      {"gelu", [](const tg::Var<float>& v) { return tg::gelu(v); }, {1e4f, 0, 1e30f, 0}, {1, 0, 1, 0}},
      // Regression: the tanh form's backward computed 0 * inf = NaN once x² overflowed.
      {"gelu_tanh",
       [](const tg::Var<float>& v) { return tg::gelu(v, tg::GeluApprox::Tanh); },
       {1e4f, 0, 1e30f, 0},
       {1, 0, 1, 0}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    tg::Tape<float> t;
    auto in = t.input(x, true);
    auto y = c.f(in);
    t.backward(y, xt::ones<float>({4}));
    CHECK((y.value() == c.value));
    CHECK((t.grad(in) == c.grad));
  }
}

TEST_CASE(
    "cross_entropy and softmax with masked (-inf) logits are finite and give the masked class nothing") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{{0.0f, -kInf, 1.0f}, {-kInf, 2.0f, -kInf}}, true);
  auto loss = tg::cross_entropy(x, {0, 1}, {tg::Reduction::Sum});
  t.backward(loss);
  const double p0 = 1.0 / (1.0 + std::exp(1.0));  // softmax of row 0 at class 0
  CHECK(loss.item() == Approx(-std::log(p0)).epsilon(1e-6));
  CHECK(t.grad(x)(0, 0) == Approx(p0 - 1).epsilon(1e-6));
  CHECK(t.grad(x)(0, 1) == 0.0f);
  CHECK(t.grad(x)(0, 2) == Approx(1 - p0).epsilon(1e-6));
  for (int k = 0; k < 3; ++k) CHECK(t.grad(x)(1, k) == 0.0f);  // one live class: loss 0, no gradient

  tg::Tape<float> t2;
  auto z = t2.input(xt::xarray<float>{0.0f, -kInf, 1.0f}, true);
  auto p = tg::softmax(z);
  t2.backward(p, xt::xarray<float>{1.0f, 5.0f, 0.0f});
  CHECK(p.value()(1) == 0.0f);
  for (int k = 0; k < 3; ++k) CHECK(std::isfinite(t2.grad(z)(k)));
  CHECK(t2.grad(z)(1) == 0.0f);
}

TEST_CASE(
    "clip_grad_norm of float gradients near 1e30 gives the exact norm and clips them, without overflow") {
  // Σ g² = 2.5e61 overflows float (max 3.4e38) but not the double accumulator.
  tg::Parameter<float> a(xt::zeros<float>({2})), b(xt::zeros<float>({1}));
  a.mutable_grad() = {3e30f, 0.0f};
  b.mutable_grad() = {4e30f};
  const double total = tg::clip_grad_norm<float>({&a, &b}, 1.0);
  CHECK(total == Approx(5e30).epsilon(1e-6));
  CHECK(a.grad()(0) == Approx(0.6f).epsilon(1e-6));
  CHECK(b.grad()(0) == Approx(0.8f).epsilon(1e-6));
  // ... and near float's smallest normals, where g² underflows float to 0.
  a.mutable_grad() = {3e-30f, 0.0f};
  b.mutable_grad() = {4e-30f};
  CHECK(tg::clip_grad_norm<float>({&a, &b}, 1.0) == Approx(5e-30).epsilon(1e-6));
  CHECK(b.grad()(0) == 4e-30f);  // below max_norm: unchanged
  // The infinity norm of the same.
  CHECK(tg::clip_grad_norm<float>({&a, &b}, 1.0, std::numeric_limits<double>::infinity()) ==
        Approx(4e-30).epsilon(1e-6));
}

TEST_CASE("float sum and mean of a million values are accurate to float rounding (accumulated in double)") {
  // A float accumulator gives 100958.34 for this sum (1% off); the double one is exact to
  // float's rounding of the result.
  const xt::xarray<float> x = xt::ones<float>({1000, 1000}) * 0.1f;
  const double exact = 1e6 * static_cast<double>(0.1f);
  tg::Tape<float> t;
  auto v = t.input(x, true);
  CHECK(tg::sum(v).item() == static_cast<float>(exact));
  CHECK(tg::mean(v).item() == 0.1f);
  auto rows = tg::sum(v, {1});
  CHECK(rows.value()(0) == static_cast<float>(1000 * static_cast<double>(0.1f)));
  auto var = tg::var(v);
  CHECK(var.item() == 0.0f);  // two-pass: a constant has exactly zero variance
  t.backward(var);
  CHECK((t.grad(v) == xt::zeros<float>({1000, 1000})));
}

TEST_CASE("centered RMSprop with a constant float gradient stays finite for 5,000 steps") {
  // Regression: s - a² (a variance, 0 here in the limit) rounded below 0 after ~1,200 steps and
  // sqrt turned the parameter into NaN. Adam and plain RMSprop ride along as controls.
  tg::Parameter<float> w1(xt::xarray<float>{1, 2, 3}), w2(xt::xarray<float>{1, 2, 3}),
      w3(xt::xarray<float>{1, 2, 3});
  tg::RMSpropOptions centered;
  centered.centered = true;
  tg::RMSprop<float> rms_c({&w1}, 1e-6, centered);
  tg::RMSprop<float> rms({&w2}, 1e-3);
  tg::Adam<float> adam({&w3}, 1e-3);
  const xt::xarray<float> g{0.1f, 3.0f, 1e-3f};
  for (int s = 0; s < 5000; ++s) {
    for (auto* w : {&w1, &w2, &w3}) w->mutable_grad() = g;
    rms_c.step();
    rms.step();
    adam.step();
  }
  for (auto* w : {&w1, &w2, &w3}) {
    for (float v : w->value) CHECK(std::isfinite(v));
  }
  // Plain RMSprop and Adam move every coordinate by about lr per step against the gradient.
  CHECK(w2.value(0) == Approx(1 - 5000 * 1e-3).margin(0.5));
  CHECK(w3.value(2) == Approx(3 - 5000 * 1e-3).margin(0.1));
}
