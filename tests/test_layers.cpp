#include "reference_ops.hpp"
#include "support.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/nn/norm.hpp"
#include <xtensor/xview.hpp>

namespace tg = tapegrad;
using nlohmann::json;

namespace {
tg::StateDict<double> state_of(const json& j) {
  tg::StateDict<double> s;
  for (const auto& [k, v] : j.items()) s[k] = tgtest::to_array(v);
  return s;
}

// Runs one fixture step: forward on c["x"], backward with c["upstream"]; compares output, input
// gradient and every parameter gradient.
void check_step(tg::Module<double>& m, const json& c) {
  m.zero_grad();
  tg::Tape<double> t;
  auto x = t.input(tgtest::to_array(c.at("x")), true);
  auto y = m.forward(t, x);
  CHECK(tgtest::max_abs_diff(y.value(), tgtest::to_array(c.at("out"))) < 1e-12);
  t.backward(y, tgtest::to_array(c.at("upstream")));
  CHECK(tgtest::max_abs_diff(t.grad(x), tgtest::to_array(c.at("grad_x"))) < 1e-12);
  for (auto& [name, p] : m.named_parameters()) {
    INFO("parameter " << name);
    CHECK(tgtest::max_abs_diff(p->grad(), tgtest::to_array(c.at("grads").at(name))) < 1e-12);
  }
}

double max_abs(const xt::xarray<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}
}  // namespace

TEST_CASE("Linear matches torch.nn.Linear: output and gradients of input, weight and bias") {
  const auto fixture = tgtest::load_fixture("layers.json");  // keep it alive: the loop reads into it
  for (const auto& c : fixture.at("linear")) {
    tg::Linear<double> m(c.at("in"), c.at("out_features"), tg::LinearOptions().bias(c.at("bias")));
    m.load_state_dict(state_of(c.at("state")));
    check_step(m, c);
  }
}

TEST_CASE("Linear initializes like PyTorch: U(-1/sqrt(in), 1/sqrt(in)) from the given generator") {
  tg::Generator g1(42), g2(42);
  tg::Linear<double> a(64, 128, {}, g1), b(64, 128, {}, g2);
  CHECK((a.weight->value == b.weight->value));
  const double bound = 1.0 / 8.0;
  CHECK(max_abs(a.weight->value) <= bound);
  CHECK(max_abs(a.weight->value) > 0.99 * bound);  // 8192 draws reach the edge of the range
  CHECK(std::abs(xt::mean(a.weight->value)()) < 0.01);
  CHECK(max_abs(a.bias->value) <= bound);
  CHECK(a.to_string() == "Linear(in_features=64, out_features=128, bias=True)\n");
  tg::Linear<float> nobias(3, 2, tg::LinearOptions().bias(false));
  CHECK(nobias.bias == nullptr);
  CHECK(nobias.named_parameters().size() == 1);
}

TEST_CASE("LayerNorm matches torch.nn.LayerNorm, with and without affine, over 1 and 2 normalized dims") {
  const auto fixture = tgtest::load_fixture("layers.json");  // keep it alive: the loop reads into it
  for (const auto& c : fixture.at("layernorm")) {
    tg::Shape ns;
    for (const auto& d : c.at("normalized_shape")) ns.push_back(d.get<std::size_t>());
    tg::LayerNorm<double> m(ns, tg::LayerNormOptions().elementwise_affine(c.at("affine")));
    if (c.at("affine")) m.load_state_dict(state_of(c.at("state")));
    check_step(m, c);
  }
}

TEST_CASE("BatchNorm1d matches torch.nn.BatchNorm1d: training steps, running statistics and eval") {
  const auto fixture = tgtest::load_fixture("layers.json");  // keep it alive: the loop reads into it
  for (const auto& c : fixture.at("batchnorm")) {
    INFO("shape " << c.at("shape").dump() << " momentum " << c.at("momentum").dump());
    tg::BatchNormOptions o;
    o.affine(c.at("affine")).track_running_stats(c.at("track"));
    if (c.at("momentum").is_null()) o.momentum(std::nullopt);
    tg::BatchNorm1d<double> m(c.at("shape")[1], o);
    m.load_state_dict(state_of(c.at("init_state")));
    m.train();
    for (const auto& step : c.at("train_steps")) {
      check_step(m, step);
      const auto expected = state_of(step.at("state_after"));
      const auto actual = m.state_dict();
      for (const auto& [k, v] : expected) {
        INFO("buffer " << k);
        CHECK(tgtest::max_abs_diff(actual.at(k), v) < 1e-12);
      }
    }
    m.eval();
    check_step(m, c.at("eval"));
  }
}

TEST_CASE(
    "BatchNorm1d in training mode with one value per channel throws PyTorch's error and changes nothing") {
  tg::BatchNorm1d<float> bn(8);
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>(xt::ones<float>({1, 8})));
  const auto before = bn.state_dict();
  const auto n = t.size();
  CHECK_THROWS_WITH(
      bn.forward(t, x),
      Catch::Contains("Expected more than 1 value per channel when training") && Catch::Contains("(1, 8)"));
  CHECK_THROWS_AS(bn.forward(t, x), tg::StateError);
  CHECK(t.size() == n);
  const auto after = bn.state_dict();
  for (const auto& [k, v] : before) CHECK((after.at(k) == v));
  bn.eval();  // the advice in the message works
  CHECK(bn.forward(t, x).shape() == tg::Shape{1, 8});
}

TEST_CASE("layers reject inputs of the wrong shape with ShapeErrors naming the shapes") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>(xt::zeros<double>({2, 4})));
  tg::LayerNorm<double> ln(5);
  CHECK_THROWS_WITH(ln.forward(t, x), Catch::Contains("(5)") && Catch::Contains("(2, 4)"));
  tg::BatchNorm1d<double> bn(3);
  CHECK_THROWS_WITH(bn.forward(t, x), Catch::Contains("(N, 3)") && Catch::Contains("(2, 4)"));
  tg::Linear<double> lin(5, 2);
  CHECK_THROWS_AS(lin.forward(t, x), tg::ShapeError);
  CHECK(t.size() == 1);
  CHECK_THROWS_AS(tg::LayerNorm<double>(tg::Shape{}), tg::ValueError);
  CHECK_THROWS_AS(tg::BatchNorm1d<double>(3, tg::BatchNormOptions().momentum(1.5)), tg::ValueError);
}

TEST_CASE("LayerNorm output of one example does not depend on the rest of the batch") {
  tg::LayerNorm<double> ln(16);
  const auto probe = tgtest::randn({1, 16}, 1, 3.0);
  xt::xarray<double> alone;
  {
    tg::Tape<double> t;
    alone = ln.forward(t, t.input(probe)).value();
  }
  for (std::uint64_t seed : {2, 3, 4}) {
    auto batch = tgtest::randn({8, 16}, seed, 5.0);
    xt::view(batch, 5, xt::all()) = xt::view(probe, 0, xt::all());
    tg::Tape<double> t;
    const auto y = ln.forward(t, t.input(batch)).value();
    CHECK((xt::xarray<double>(xt::view(y, xt::range(5, 6), xt::all())) == alone));
  }
  // and each example has mean 0 and (biased) std 1 over its features, up to eps
  CHECK(std::abs(xt::mean(alone)()) < 1e-12);
  CHECK(std::sqrt(xt::mean(alone * alone)()) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("BatchNorm output of an example changes with the batch in training mode, not in eval mode") {
  tg::BatchNorm1d<double> bn(4);
  auto a = tgtest::randn({6, 4}, 1);
  auto b = a;
  xt::view(b, xt::range(1, 6), xt::all()) = tgtest::randn({5, 4}, 2);
  auto first_row = [&](const xt::xarray<double>& batch) {
    tg::Tape<double> t;
    return xt::xarray<double>(xt::view(bn.forward(t, t.input(batch)).value(), 0, xt::all()));
  };
  CHECK(tgtest::max_abs_diff(first_row(a), first_row(b)) > 1e-3);
  bn.eval();
  CHECK((first_row(a) == first_row(b)));
}

TEST_CASE("the fused LayerNorm module agrees with LayerNorm composed from primitive ops") {
  tg::LayerNorm<double> ln(7);
  ln.weight->value = tgtest::randn({7}, 3);
  ln.bias->value = tgtest::randn({7}, 4);
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({5, 7}, 5, 10.0), true);
  auto fused = ln.forward(t, x);
  auto composed =
      tgtest::layer_norm_reference(x, t.constant(ln.weight->value), t.constant(ln.bias->value), 1e-5);
  CHECK(tgtest::max_abs_diff(fused.value(), composed.value()) < 1e-12);
  const auto up = tgtest::randn({5, 7}, 6);
  t.backward(fused, up, tg::BackwardOptions{true});
  const xt::xarray<double> g_fused = t.grad(x);
  t.backward(composed, up);
  // leaf grads accumulate: after the second backward, grad(x) = g_fused + g_composed
  CHECK(tgtest::max_abs_diff(xt::xarray<double>(t.grad(x) - g_fused), g_fused) < 1e-12);
}

TEST_CASE("a constant row through LayerNorm gives finite output and finite gradients") {
  tg::LayerNorm<double> ln(4);
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>(xt::ones<double>({2, 4}) * 3.0), true);
  auto y = ln.forward(t, x);
  t.backward(y, tgtest::randn({2, 4}, 1));
  for (double v : y.value()) CHECK(std::isfinite(v));
  for (double v : t.grad(x)) CHECK(std::isfinite(v));
  for (double v : ln.weight->grad()) CHECK(std::isfinite(v));
}

TEST_CASE("layers pass gradcheck for input and parameters on odd shapes") {
  tg::Generator gen(1);
  tg::Linear<double> lin(1, 3, {}, gen);
  CHECK(tg::gradcheck_module(lin, tgtest::randn({2, 1}, 1)).ok);
  tg::Linear<double> lin3(4, 1, {}, gen);
  CHECK(tg::gradcheck_module(lin3, tgtest::randn({2, 3, 4}, 2)).ok);
  tg::LayerNorm<double> ln(3);
  ln.weight->value = tgtest::randn({3}, 3);
  CHECK(tg::gradcheck_module(ln, tgtest::randn({1, 3}, 4)).ok);
  tg::LayerNorm<double> ln2({2, 3});
  CHECK(tg::gradcheck_module(ln2, tgtest::randn({2, 2, 3}, 5)).ok);
  tg::BatchNorm1d<double> bn(2);
  bn.eval();
  CHECK(tg::gradcheck_module(bn, tgtest::randn({3, 2, 2}, 7)).ok);
}

TEST_CASE("gradcheck of BatchNorm1d in training mode leaves its running statistics untouched") {
  tg::BatchNorm1d<double> bn(3);
  bn.weight->value = tgtest::randn({3}, 1);
  const auto before = bn.state_dict();
  const auto r = tg::gradcheck_module(bn, tgtest::randn({4, 3}, 2));
  INFO(r.message);
  CHECK(r.ok);
  const auto after = bn.state_dict();
  for (const auto& [k, v] : before) CHECK((after.at(k) == v));
  CHECK(after.at("num_batches_tracked")() == 0.0);
}

TEST_CASE("BatchNorm1d without running stats has no buffers and uses batch statistics in eval too") {
  tg::BatchNorm1d<double> bn(2, tg::BatchNormOptions().track_running_stats(false));
  CHECK(bn.named_buffers().empty());
  bn.eval();
  tg::Tape<double> t;
  auto y = bn.forward(t, t.input(tgtest::randn({5, 2}, 1, 4.0)));
  CHECK(std::abs(xt::mean(y.value())()) < 1e-12);
}
