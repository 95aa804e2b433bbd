#include "rnn_check.hpp"

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::randn;

namespace {

std::size_t size_of(const nlohmann::json& c, const char* key) { return c.at(key).get<std::size_t>(); }

bool buffers_equal(const tg::StateDict<double>& a, const tg::StateDict<double>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    if (!(v == b.at(k))) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("LNRNN matches the PyTorch re-implementation of both variants: output, h_n, every gradient") {
  const auto fx = tgtest::load_fixture("norm_rnn.json");
  int n = 0;
  for (const auto& c : fx.at("cases")) {
    if (c.at("module") != "LNRNN") continue;
    INFO("case " << n++ << ": " << c.at("variant") << ", x " << c.at("x").at("shape") << ", h0 "
                 << c.contains("h0"));
    const auto variant = c.at("variant") == "summed" ? tg::LNVariant::Summed : tg::LNVariant::Separate;
    tg::LNRNN<double> m(size_of(c, "input_size"), size_of(c, "hidden_size"),
                        tg::LNRNNOptions().variant(variant).batch_first(c.at("batch_first").get<bool>()));
    rnntest::check_fixture_case(m, c);
  }
  CHECK(n == 5);
}

TEST_CASE("BNRNN matches the PyTorch re-implementation: output, gradients and running statistics") {
  const auto fx = tgtest::load_fixture("norm_rnn.json");
  int n = 0;
  for (const auto& c : fx.at("cases")) {
    if (c.at("module") != "BNRNN") continue;
    INFO("case " << n++ << ": training " << c.at("training") << ", x " << c.at("x").at("shape") << ", T_max "
                 << c.at("max_length"));
    tg::BNRNN<double> m(
        size_of(c, "input_size"), size_of(c, "hidden_size"),
        tg::BNRNNOptions().max_length(size_of(c, "max_length")).batch_first(c.at("batch_first").get<bool>()));
    m.train(c.at("training").get<bool>());
    rnntest::check_fixture_case(m, c);  // also compares the buffers after the step
  }
  CHECK(n == 4);
}

TEST_CASE("LNRNN gradients pass gradcheck w.r.t. input, h0 and all parameters") {
  const auto variant = GENERATE(tg::LNVariant::Summed, tg::LNVariant::Separate);
  INFO("separate " << (variant == tg::LNVariant::Separate));
  tg::Generator gen(3);
  SECTION("input 1, hidden 3, T = 1, N = 1, with h0") {
    tg::LNRNN<double> m(1, 3, tg::LNRNNOptions().variant(variant), gen);
    for (auto* p : m.parameters()) p->value = randn(p->shape(), p->size() + 40, 0.7);
    CHECK_GRADCHECK_RECURRENT(m, randn({1, 1, 1}, 1), std::optional(randn({1, 1, 3}, 2)));
  }
  SECTION("hidden 1 (LN of one value is its bias), T = 3, N = 2, no h0") {
    tg::LNRNN<double> m(2, 1, tg::LNRNNOptions().variant(variant), gen);
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 2, 2}, 3), std::nullopt);
  }
  SECTION("T = 4, N = 3, batch_first, random gains") {
    tg::LNRNN<double> m(3, 4, tg::LNRNNOptions().variant(variant).batch_first(true), gen);
    for (auto* p : m.parameters()) p->value = randn(p->shape(), p->size() + 50, 0.7);
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 4, 3}, 4), std::optional(randn({1, 3, 4}, 5)));
  }
}

TEST_CASE("BNRNN gradcheck in training and eval mode leaves the running statistics unchanged") {
  tg::Generator gen(4);
  tg::BNRNN<double> m(2, 3, tg::BNRNNOptions().max_length(2), gen);
  for (auto* p : m.parameters()) p->value = randn(p->shape(), p->size() + 60, 0.7);
  for (auto& [name, b] : m.named_buffers()) {
    if (name.find("running_var") != std::string::npos) *b = tgtest::uniform(b->shape(), 7, 0.5, 1.5);
    if (name.find("running_mean") != std::string::npos) *b = randn(b->shape(), 8, 0.3);
  }
  const auto before = m.state_dict();
  SECTION("training, T = 3 > T_max, N = 2 (the smallest legal batch), with h0") {
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 2, 2}, 1), std::optional(randn({1, 2, 3}, 2)));
  }
  SECTION("training, T = 1, N = 3, no h0") {
    CHECK_GRADCHECK_RECURRENT(m, randn({1, 3, 2}, 3), std::nullopt);
  }
  SECTION("eval, N = 1, T = 3 > T_max, with h0") {
    m.eval();
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 1, 2}, 4), std::optional(randn({1, 1, 3}, 5)));
  }
  SECTION("training, input 1, hidden 1") {
    tg::BNRNN<double> small(1, 1, tg::BNRNNOptions(), gen);
    const auto small_before = small.state_dict();
    CHECK_GRADCHECK_RECURRENT(small, randn({2, 3, 1}, 6), std::optional(randn({1, 3, 1}, 7)));
    CHECK(buffers_equal(small.state_dict(), small_before));
  }
  CHECK(buffers_equal(m.state_dict(), before));
}

TEST_CASE("BNRNN training updates every step's running statistics once per forward; eval updates none") {
  tg::BNRNN<double> m(2, 3, tg::BNRNNOptions().max_length(4));
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 5, 2}, 1));
  m.forward(t, x);
  const auto after = m.state_dict();
  CHECK(after.at("bn_x.num_batches_tracked")() == 1.0);
  CHECK(after.at("bn_h.num_batches_tracked")() == 1.0);
  // Step 0 of BN_x: running_mean = 0.1 * batch mean of W_ih x_0, running_var = 0.9 + 0.1 * unbiased var.
  const xt::xarray<double> W = after.at("weight_ih");
  for (std::size_t j = 0; j < 3; ++j) {
    double p[5];
    double mean = 0, var = 0;
    for (std::size_t n = 0; n < 5; ++n) {
      p[n] = W(j, 0) * x.value()(0, n, 0) + W(j, 1) * x.value()(0, n, 1);
      mean += p[n] / 5;
    }
    for (std::size_t n = 0; n < 5; ++n) var += (p[n] - mean) * (p[n] - mean) / 4;
    CHECK(after.at("bn_x.running_mean")(0, j) == Approx(0.1 * mean).epsilon(1e-12));
    CHECK(after.at("bn_x.running_var")(0, j) == Approx(0.9 + 0.1 * var).epsilon(1e-12));
    CHECK(after.at("bn_x.running_mean")(3, j) == 0.0);  // T = 2: steps 2, 3 untouched
  }
  m.eval();
  m.forward(t, x);
  CHECK(buffers_equal(m.state_dict(), after));
}

TEST_CASE("BNRNN training with a batch of 1 throws the BatchNorm error and changes nothing") {
  tg::BNRNN<double> m(2, 3);
  tg::Tape<double> t;
  const auto x = t.input(randn({4, 1, 2}, 1), true);
  const auto unbatched = t.input(randn({4, 2}, 2), true);
  const auto before = m.state_dict();
  const std::size_t n = t.size();
  CHECK_THROWS_AS(m.forward(t, x), tg::StateError);
  CHECK_THROWS_WITH(m.forward(t, x), Catch::Contains("more than 1 value per channel") &&
                                         Catch::Contains("(4, 1, 2)") && Catch::Contains("eval()"));
  CHECK_THROWS_AS(m.forward(t, unbatched), tg::StateError);
  CHECK(t.size() == n);
  CHECK(buffers_equal(m.state_dict(), before));
  m.eval();
  CHECK(m.forward(t, x).shape() == tg::Shape{4, 1, 3});
}

TEST_CASE("LNRNN and BNRNN reject bad inputs and options with typed errors, tape unchanged") {
  tg::LNRNN<double> ln(3, 4);
  tg::BNRNN<double> bn(3, 4);
  tg::Tape<double> t;
  const auto good = t.input(randn({5, 2, 3}, 1));
  const auto wide = t.input(randn({5, 2, 4}, 2));
  const auto rank4 = t.input(randn({1, 5, 2, 3}, 3));
  const auto h0_bad = t.input(randn({2, 2, 4}, 4));
  const std::size_t n = t.size();
  for (int k = 0; k < 2; ++k) {
    auto run = [&](const tg::Var<double>& x, const tg::Var<double>& h0) {
      return k == 0 ? ln.run(t, x, h0) : bn.run(t, x, h0);
    };
    CHECK_THROWS_AS(run(wide, {}), tg::ShapeError);
    CHECK_THROWS_WITH(run(wide, {}), Catch::Contains("Expected 3, got 4"));
    CHECK_THROWS_AS(run(rank4, {}), tg::ShapeError);
    CHECK_THROWS_AS(run(good, h0_bad), tg::ShapeError);
    CHECK_THROWS_WITH(run(good, h0_bad), Catch::Contains("(1, 2, 4)") && Catch::Contains("(2, 2, 4)"));
  }
  CHECK(t.size() == n);
  CHECK_THROWS_AS(tg::LNRNN<double>(3, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::LNRNN<double>(3, 4, tg::LNRNNOptions().eps(-1)), tg::ValueError);
  CHECK_THROWS_AS(tg::BNRNN<double>(3, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::BNRNN<double>(3, 4, tg::BNRNNOptions().max_length(0)), tg::ValueError);
  CHECK_THROWS_AS(tg::BNRNN<double>(3, 4, tg::BNRNNOptions().momentum(1.5)), tg::ValueError);
}

TEST_CASE("LNRNN and BNRNN use the documented parameter names and initial values") {
  tg::LNRNN<float> summed(3, 4);
  tg::LNRNN<float> separate(3, 4, tg::LNRNNOptions().variant(tg::LNVariant::Separate));
  std::vector<std::string> names;
  for (auto& [name, p] : summed.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight_ih", "weight_hh", "ln.weight", "ln.bias"});
  names.clear();
  for (auto& [name, p] : separate.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight_ih", "weight_hh", "bias", "ln_h.weight", "ln_h.bias",
                                          "ln_x.weight", "ln_x.bias"});
  CHECK((summed.state_dict().at("ln.weight") == xt::ones<float>({4})));
  CHECK(summed.to_string() ==
        "LNRNN(3, 4, variant=summed\n  (ln): LayerNorm((4,), eps=1e-05, elementwise_affine=True)\n)\n");

  tg::BNRNN<float> bn(3, 4, tg::BNRNNOptions().max_length(7));
  const auto sd = bn.state_dict();
  CHECK((sd.at("bn_x.weight") == xt::xarray<float>(xt::ones<float>({4}) * 0.1f)));
  CHECK((sd.at("bn_h.weight") == xt::xarray<float>(xt::ones<float>({4}) * 0.1f)));
  CHECK(sd.at("bn_h.running_mean").shape() == tg::Shape{7, 4});
  CHECK((sd.at("bn_h.running_var") == xt::ones<float>({7, 4})));
  CHECK(sd.at("bn_x.num_batches_tracked").dimension() == 0);
  CHECK((sd.at("bias") == xt::zeros<float>({4})));
  CHECK(bn.named_parameters().size() == 5);
  CHECK(bn.named_buffers().size() == 6);
}

TEST_CASE("SequenceBatchNorm normalizes each step with that step's statistics") {
  tg::SequenceBatchNorm<double> bn(3, 2, 0.5, 1e-5, 0.1);
  tg::Tape<double> t;
  const auto x = t.input(randn({3, 4, 3}, 1), true);
  const auto y = bn.forward(t, x);
  tg::Tape<double> r;
  const auto gamma = r.input(xt::xarray<double>(xt::ones<double>({3}) * 0.5));
  const auto beta = r.input(xt::zeros<double>({3}));
  for (std::size_t s = 0; s < 3; ++s) {
    const auto ys = tg::batch_norm(tg::select(r.input(x.value()), 0, std::ptrdiff_t(s)), gamma, beta, 1e-5);
    for (std::size_t n = 0; n < 4; ++n) {
      for (std::size_t j = 0; j < 3; ++j) CHECK(y.value()(s, n, j) == Approx(ys.value()(n, j)).margin(1e-14));
    }
  }
  CHECK(bn.num_batches_tracked() == 1.0);
  // Steps 1 and 2 both fed the last of the 2 slots: it differs from its initial value of 1.
  CHECK(bn.running_var(1, 0) != 1.0);
  CHECK_THROWS_AS(bn.forward(t, t.input(randn({3, 4, 2}, 2))), tg::ShapeError);
}
