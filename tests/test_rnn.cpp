#include "recurrent_fixture.hpp"
#include "rnn_check.hpp"

#include <cstring>

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::randn;

namespace {

// The slow reference: the same layer composed from primitive ops, one linear per input and
// one activation per step, then stack.
template <class T>
tg::Var<T> composed_rnn_layer(const tg::Var<T>& x, const tg::Var<T>& h0, const tg::Var<T>& W_ih,
                              const tg::Var<T>& W_hh, const tg::Var<T>& b_ih, const tg::Var<T>& b_hh,
                              tg::RNNActivation act) {
  tg::Tape<T>& t = x.tape();
  const std::size_t steps = x.shape()[0], N = x.shape()[1], H = W_hh.shape()[0];
  tg::Var<T> h = h0.defined() ? h0 : t.constant(xt::zeros<T>({N, H}));
  std::vector<tg::Var<T>> states;
  for (std::size_t s = 0; s < steps; ++s) {
    const auto a = tg::linear(tg::select(x, 0, std::ptrdiff_t(s)), W_ih, b_ih) + tg::linear(h, W_hh, b_hh);
    h = act == tg::RNNActivation::Tanh ? tg::tanh(a) : tg::relu(a);
    states.push_back(h);
  }
  return tg::stack(states, 0);
}

}  // namespace

TEST_CASE("RNN matches torch.nn.RNN: output, h_n and every gradient") {
  const auto fx = tgtest::load_fixture("rnn.json");
  const std::vector<nlohmann::json> cases(fx.at("cases").begin(), fx.at("cases").end());
  rnnfx::for_each_case<tg::RNN<double>, tg::RNNOptions>(
      cases, 8, [](tg::RNN<double>& m, const nlohmann::json& c) {
        rnntest::check_fixture_case(m, c);
        return 0.0;  // (check_fixture_case checks each array against the tolerance)
      });
}

TEST_CASE("RNN gradients pass gradcheck w.r.t. input, h0 and all parameters on odd shapes") {
  SECTION("hidden 1, input 1, T = 1, N = 1, with h0") {
    tg::Generator gen(1);
    tg::RNN<double> rnn(1, 1, tg::RNNOptions(), gen);
    CHECK_GRADCHECK_RECURRENT(rnn, randn({1, 1, 1}, 1), std::optional(randn({1, 1, 1}, 2)));
  }
  SECTION("two relu layers, no bias, batch_first, with h0") {
    tg::Generator gen(2);
    tg::RNN<double> rnn(
        2, 3, tg::RNNOptions().num_layers(2).nonlinearity("relu").bias(false).batch_first(true), gen);
    CHECK_GRADCHECK_RECURRENT(rnn, randn({2, 3, 2}, 3), std::optional(randn({2, 2, 3}, 4)));
  }
  SECTION("two tanh layers, T = 4, N = 1, no h0") {
    tg::Generator gen(3);
    tg::RNN<double> rnn(3, 2, tg::RNNOptions().num_layers(2), gen);
    CHECK_GRADCHECK_RECURRENT(rnn, randn({4, 1, 3}, 5), std::nullopt);
  }
  SECTION("unbatched input (T, I) with h0 (num_layers, H)") {
    tg::Generator gen(4);
    tg::RNN<double> rnn(3, 2, tg::RNNOptions().num_layers(2), gen);
    CHECK_GRADCHECK_RECURRENT(rnn, randn({3, 3}, 6), std::optional(randn({2, 2}, 7)));
  }
}

TEST_CASE("the fused rnn_layer equals the same RNN composed from linear and tanh/relu per step") {
  for (const auto act : {tg::RNNActivation::Tanh, tg::RNNActivation::ReLU}) {
    for (const bool with_h0 : {false, true}) {
      INFO("relu " << (act == tg::RNNActivation::ReLU) << ", h0 " << with_h0);
      const std::vector<xt::xarray<double>> v = {randn({5, 3, 4}, 10),   randn({3, 6}, 11, 0.5),
                                                 randn({6, 4}, 12, 0.4), randn({6, 6}, 13, 0.4),
                                                 randn({6}, 14, 0.3),    randn({6}, 15, 0.3)};
      const std::vector<bool> used = {true, with_h0, true, true, true, true};
      rnnfx::check_fused_equals_composed(
          v, used, randn({5, 3, 6}, 16),
          [&](bool fused, const std::vector<tg::Var<double>>& in) {
            const tg::Var<double> h0 = with_h0 ? in[1] : tg::Var<double>();
            return fused ? tg::rnn_layer(in[0], h0, in[2], in[3], in[4], in[5], act)
                         : composed_rnn_layer(in[0], h0, in[2], in[3], in[4], in[5], act);
          },
          1e-13, 1e-12);
    }
  }
  // The fused layer is one node; the composed one has several per step.
  tg::Tape<double> t;
  const auto x = t.input(randn({4, 2, 3}, 1), true);
  const auto wih = t.input(randn({5, 3}, 2), true), whh = t.input(randn({5, 5}, 3), true);
  const std::size_t before = t.size();
  tg::rnn_layer(x, tg::Var<double>(), wih, whh, tg::Var<double>(), tg::Var<double>());
  CHECK(t.size() == before + 1);
}

TEST_CASE("rnn_layer gradcheck with one bias, none, and an h0") {
  const auto act = GENERATE(tg::RNNActivation::Tanh, tg::RNNActivation::ReLU);
  INFO("relu " << (act == tg::RNNActivation::ReLU));
  // x, h0, W_ih, W_hh, b_ih: b_hh absent.
  CHECK_GRADCHECK(
      [act](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
        return tg::rnn_layer(v[0], v[1], v[2], v[3], v[4], tg::Var<double>(), act);
      },
      {randn({3, 2, 2}, 20), randn({2, 3}, 21, 0.5), randn({3, 2}, 22, 0.6), randn({3, 3}, 23, 0.6),
       randn({3}, 24, 0.3)});
  // No h0, no b_ih, only b_hh; T = 1.
  CHECK_GRADCHECK(
      [act](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
        return tg::rnn_layer(v[0], tg::Var<double>(), v[1], v[2], tg::Var<double>(), v[3], act);
      },
      {randn({1, 3, 2}, 25), randn({4, 2}, 26, 0.6), randn({4, 4}, 27, 0.6), randn({4}, 28, 0.3)});
}

TEST_CASE("RNN uses PyTorch's parameter names, shapes and init range") {
  tg::Generator gen(7);
  tg::RNN<float> rnn(3, 16, tg::RNNOptions().num_layers(2), gen);
  std::vector<std::string> names;
  for (auto& [name, p] : rnn.named_parameters()) {
    names.push_back(name);
    for (float v : p->value) CHECK(std::abs(v) <= 0.25f);  // 1 / sqrt(16)
  }
  CHECK(names == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                          "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"});
  const auto sd = rnn.state_dict();
  CHECK(sd.at("weight_ih_l0").shape() == tg::Shape{16, 3});
  CHECK(sd.at("weight_ih_l1").shape() == tg::Shape{16, 16});
  CHECK(sd.at("bias_hh_l1").shape() == tg::Shape{16});
  CHECK(tg::RNN<float>(3, 4, tg::RNNOptions().bias(false)).named_parameters().size() == 2);
  CHECK(rnn.to_string() == "RNN(3, 16, num_layers=2)\n");
  CHECK(
      tg::RNN<float>(3, 4, tg::RNNOptions().nonlinearity("relu").bias(false).batch_first(true)).to_string() ==
      "RNN(3, 4, nonlinearity='relu', bias=False, batch_first=True)\n");
}

TEST_CASE("RNN forward returns the output and the shapes follow torch.nn.RNN") {
  tg::RNN<double> rnn(3, 4, tg::RNNOptions().num_layers(2).batch_first(true));
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 5, 3}, 1));
  const auto r = rnn.run(t, x);
  CHECK(r.output.shape() == tg::Shape{2, 5, 4});
  CHECK(r.h_n.shape() == tg::Shape{2, 2, 4});
  CHECK((rnn.forward(t, x).value() == r.output.value()));
  // h_n's top layer is the output's last step.
  for (std::size_t n = 0; n < 2; ++n) {
    for (std::size_t j = 0; j < 4; ++j) CHECK(r.h_n.value()(1, n, j) == r.output.value()(n, 4, j));
  }
}

TEST_CASE("RNN rejects bad inputs with typed errors that name the shapes, leaving the tape unchanged") {
  tg::RNN<double> rnn(3, 4, tg::RNNOptions().num_layers(2));
  tg::Tape<double> t;
  const auto good = t.input(randn({5, 2, 3}, 1));
  const auto rank4 = t.input(randn({5, 2, 3, 1}, 2));
  const auto rank1 = t.input(randn({3}, 2));
  const auto wide = t.input(randn({5, 2, 4}, 3));
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 3}));
  const auto h0_bad = t.input(randn({1, 2, 4}, 4));
  const auto h0_unbatched = t.input(randn({2, 4}, 5));
  const std::size_t n = t.size();
  CHECK_THROWS_AS(rnn.run(t, rank4), tg::ShapeError);
  CHECK_THROWS_WITH(rnn.run(t, rank4), Catch::Contains("(5, 2, 3, 1)") && Catch::Contains("2-D"));
  CHECK_THROWS_AS(rnn.run(t, rank1), tg::ShapeError);
  CHECK_THROWS_AS(rnn.run(t, wide), tg::ShapeError);
  CHECK_THROWS_WITH(rnn.run(t, wide), Catch::Contains("Expected 3, got 4") && Catch::Contains("(5, 2, 4)"));
  CHECK_THROWS_AS(rnn.run(t, good, h0_bad), tg::ShapeError);
  CHECK_THROWS_WITH(rnn.run(t, good, h0_bad),
                    Catch::Contains("expected hidden size (2, 2, 4)") && Catch::Contains("(1, 2, 4)"));
  CHECK_THROWS_AS(rnn.run(t, good, h0_unbatched), tg::ShapeError);
  CHECK_THROWS_AS(rnn.run(t, empty), tg::ValueError);
  tg::Tape<double> other;
  const auto foreign = other.input(randn({5, 2, 3}, 1));
  CHECK_THROWS_AS(rnn.run(t, foreign), tg::StateError);
  CHECK(t.size() == n);

  CHECK_THROWS_AS(tg::RNN<double>(3, 4, tg::RNNOptions().nonlinearity("sigmoid")), tg::ValueError);
  CHECK_THROWS_WITH(tg::RNN<double>(3, 4, tg::RNNOptions().nonlinearity("sigmoid")),
                    Catch::Contains("'sigmoid'"));
  CHECK_THROWS_AS(tg::RNN<double>(3, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::RNN<double>(3, 4, tg::RNNOptions().num_layers(0)), tg::ValueError);
}

TEST_CASE("rnn_layer rejects mismatched weights, h0 and biases, leaving the tape unchanged") {
  tg::Tape<double> t;
  const auto x = t.input(randn({4, 2, 3}, 1));
  const auto wih = t.input(randn({5, 3}, 2)), whh = t.input(randn({5, 5}, 3));
  const auto wih_bad = t.input(randn({5, 2}, 4)), whh_bad = t.input(randn({5, 4}, 5));
  const auto h0_bad = t.input(randn({3, 5}, 6)), b_bad = t.input(randn({4}, 7));
  const auto x2 = t.input(randn({4, 3}, 8));
  const tg::Var<double> none;
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(tg::rnn_layer(x, none, wih_bad, whh, none, none),
                    Catch::Contains("W_ih must have shape (5, 3)") && Catch::Contains("(5, 2)"));
  CHECK_THROWS_WITH(tg::rnn_layer(x, none, wih, whh_bad, none, none), Catch::Contains("W_hh"));
  CHECK_THROWS_WITH(tg::rnn_layer(x, h0_bad, wih, whh, none, none),
                    Catch::Contains("h0 must have shape (2, 5)") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_WITH(tg::rnn_layer(x, none, wih, whh, b_bad, none), Catch::Contains("b_ih"));
  CHECK_THROWS_WITH(tg::rnn_layer(x, none, wih, whh, none, b_bad), Catch::Contains("b_hh"));
  CHECK_THROWS_AS(tg::rnn_layer(x2, none, wih, whh, none, none), tg::ShapeError);
  CHECK_THROWS_AS(tg::rnn_layer(x, none, wih, whh, b_bad, none), tg::ShapeError);
  CHECK(t.size() == n);
}

TEST_CASE("a second step on a reset tape reuses the buffers and gives the same values and grads") {
  tg::Generator gen(5);
  tg::RNN<float> rnn(3, 8, tg::RNNOptions().num_layers(2), gen);
  tg::Tape<float> t;
  const auto xv = randn<float>({6, 4, 3}, 9);
  xt::xarray<float> out[2], grad[2];
  for (int step = 0; step < 2; ++step) {
    t.reset();
    rnn.zero_grad();
    const auto y = rnn.forward(t, t.input(xv));
    t.backward(tg::sum(tg::mul(y, y)));
    out[step] = y.value();
    grad[step] = rnn.named_parameters()[1].second->grad();
  }
  CHECK((out[0] == out[1]));
  CHECK((grad[0] == grad[1]));
  CHECK(double(xt::amax(xt::abs(grad[0]))()) > 0.0);
}

TEST_CASE("float RNN agrees with the double one") {
  tg::RNN<double> d(4, 16, tg::RNNOptions().num_layers(2));
  tg::RNN<float> f(4, 16, tg::RNNOptions().num_layers(2));
  tg::StateDict<float> sf;
  for (const auto& [k, v] : d.state_dict()) sf[k] = xt::xarray<float>(xt::cast<float>(v));
  f.load_state_dict(sf);
  tg::Tape<double> td;
  tg::Tape<float> tf;
  const auto xv = randn({7, 3, 4}, 3);
  const auto yd = d.forward(td, td.input(xv));
  const auto yf = f.forward(tf, tf.input(xt::xarray<float>(xt::cast<float>(xv))));
  CHECK(max_abs_diff(yd.value(), yf.value()) < 1e-5);
}

TEST_CASE("in batch-invariant mode a sequence's states do not depend on the rest of the batch") {
  tg::Generator gen(11);
  tg::RNN<float> rnn(37, 67, tg::RNNOptions(), gen);
  const auto xv = randn<float>({5, 9, 37}, 12);
  tg::BatchInvariantGuard guard;
  tg::Tape<float> t;
  const auto all = rnn.forward(t, t.input(xv)).value();
  for (const std::size_t n : {0, 4, 8}) {
    xt::xarray<float> one = xt::xarray<float>::from_shape({5, 1, 37});
    for (std::size_t s = 0; s < 5; ++s) {
      for (std::size_t i = 0; i < 37; ++i) one(s, 0, i) = xv(s, n, i);
    }
    const auto y = rnn.forward(t, t.input(one)).value();
    std::size_t differing = 0;
    for (std::size_t s = 0; s < 5; ++s) {
      for (std::size_t j = 0; j < 67; ++j) differing += y(s, 0, j) != all(s, n, j);
    }
    CHECK(differing == 0);
  }
}

TEST_CASE("the float RNN's tanh is within a few ulp of the exact tanh, saturates and keeps tiny values") {
  // T = 1, one input and hidden unit, W_ih = 1, W_hh = 0: the output is tanh(x) itself.
  std::vector<float> xs;
  for (int i = -120000; i <= 120000; ++i) xs.push_back(static_cast<float>(i) * 1e-4f);  // [-12, 12]
  for (float v : {1e-30f, -3e-5f, 3.99e-4f, 4.01e-4f, 50.0f, -1e30f}) xs.push_back(v);
  xt::xarray<float> x = xt::xarray<float>::from_shape({1, xs.size(), 1});
  std::copy(xs.begin(), xs.end(), x.data());
  tg::Tape<float> t;
  const auto one = t.input(xt::ones<float>({1, 1})), zero = t.input(xt::zeros<float>({1, 1}));
  const auto y = tg::rnn_layer(t.input(x), tg::Var<float>(), one, zero, tg::Var<float>(), tg::Var<float>());
  double worst_ulp = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(xs[i]));
    const float got = y.value().data()[i];
    const float rounded = static_cast<float>(exact);
    const double ulp = std::nextafter(std::abs(rounded), 2.0f) - std::abs(rounded);
    worst_ulp = std::max(worst_ulp, std::abs(got - exact) / ulp);
    CHECK(std::abs(got) <= 1.0f);
  }
  INFO("worst error " << worst_ulp << " ulp");
  CHECK(worst_ulp < 6.0);  // measured 5.0: float evaluation of the rational (glibc tanhf: ~1)
  CHECK(y.value().data()[xs.size() - 6] == 1e-30f);
  CHECK(y.value().data()[xs.size() - 2] == 1.0f);
  CHECK(y.value().data()[xs.size() - 1] == -1.0f);
}

TEST_CASE("rnn_layer with reverse equals the forward layer on the time-reversed sequence") {
  const std::vector<std::int64_t> flip = {4, 3, 2, 1, 0};
  for (const bool with_h0 : {false, true}) {
    INFO("h0 " << with_h0);
    const auto xv = randn({5, 3, 4}, 30), h0v = randn({3, 6}, 31, 0.5), up = randn({5, 3, 6}, 32);
    const auto wih = randn({6, 4}, 33, 0.4), whh = randn({6, 6}, 34, 0.4), bih = randn({6}, 35, 0.3);
    xt::xarray<double> out[2], gx[2], gw[2], gh[2];
    for (int reversed = 0; reversed < 2; ++reversed) {
      tg::Tape<double> t;
      const auto x = t.input(xv, true), h0 = t.input(h0v, true), w = t.input(whh, true);
      const tg::Var<double> h0_or_none = with_h0 ? h0 : tg::Var<double>();
      const auto y = reversed
                         ? tg::rnn_layer(x, h0_or_none, t.input(wih), w, t.input(bih), tg::Var<double>(),
                                         tg::RNNActivation::Tanh, true)
                         : tg::index_select(tg::rnn_layer(tg::index_select(x, 0, flip), h0_or_none,
                                                          t.input(wih), w, t.input(bih), tg::Var<double>()),
                                            0, flip);
      t.backward(y, up);
      out[reversed] = y.value();
      gx[reversed] = x.grad();
      gw[reversed] = w.grad();
      if (with_h0) gh[reversed] = h0.grad();
    }
    CHECK(max_abs_diff(out[0], out[1]) < 1e-14);
    CHECK(max_abs_diff(gx[0], gx[1]) < 1e-13);
    CHECK(max_abs_diff(gw[0], gw[1]) < 1e-13);
    if (with_h0) CHECK(max_abs_diff(gh[0], gh[1]) < 1e-13);
  }
  const auto act = GENERATE(tg::RNNActivation::Tanh, tg::RNNActivation::ReLU);
  CHECK_GRADCHECK(
      [act](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
        return tg::rnn_layer(v[0], v[1], v[2], v[3], v[4], v[5], act, true);
      },
      {randn({3, 2, 2}, 40), randn({2, 3}, 41, 0.5), randn({3, 2}, 42, 0.6), randn({3, 3}, 43, 0.6),
       randn({3}, 44, 0.3), randn({3}, 45, 0.3)});
}

// ---- bidirectional RNN, dropout, RNNCell ---------------------------------------------------

namespace {
const auto run_rnn = [](tg::RNN<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                        const tg::Var<double>& h0, const tg::Var<double>&) {
  const auto r = m.run(t, x, h0);
  return rnnfx::Named{{"output", r.output}, {"h_n", r.h_n}};
};
const auto run_rnn_cell = [](tg::RNNCell<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                             const tg::Var<double>& h0, const tg::Var<double>&) {
  return rnnfx::Named{{"h", m.run(t, x, h0)}};
};
}  // namespace

TEST_CASE("bidirectional RNN matches torch.nn.RNN (tanh and relu, 1 and 2 layers, unbatched)") {
  rnnfx::check_module_cases<tg::RNN<double>, tg::RNNOptions>("RNN", 4, run_rnn);
}

TEST_CASE("RNNCell matches torch.nn.RNNCell (tanh and relu, bias off, unbatched)") {
  rnnfx::check_module_cases<tg::RNNCell<double>, tg::RNNCellOptions>("RNNCell", 3, run_rnn_cell);
}

TEST_CASE("bidirectional RNN and RNNCell gradcheck on odd shapes") {
  tg::Generator gen(21);
  SECTION("bidirectional, two relu layers, batch 1, hidden 1, with h0") {
    tg::RNN<double> m(1, 1, tg::RNNOptions().num_layers(2).nonlinearity("relu").bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({3, 1, 1}, 1), randn({4, 1, 1}, 2, 0.5), std::nullopt, run_rnn);
  }
  SECTION("bidirectional, T = 1, unbatched, no h0") {
    tg::RNN<double> m(2, 3, tg::RNNOptions().bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({1, 2}, 3), std::nullopt, std::nullopt, run_rnn);
  }
  SECTION("RNNCell: tanh with h, relu without bias, unbatched") {
    tg::RNNCell<double> a(1, 1, tg::RNNCellOptions(), gen);
    CHECK_GRADCHECK_MODULE(a, randn({1, 1}, 4), randn({1, 1}, 5), std::nullopt, run_rnn_cell);
    tg::RNNCell<double> b(3, 2, tg::RNNCellOptions().nonlinearity("relu").bias(false), gen);
    CHECK_GRADCHECK_MODULE(b, randn({2, 3}, 6), randn({2, 2}, 7), std::nullopt, run_rnn_cell);
    CHECK_GRADCHECK_MODULE(b, randn({3}, 8), std::nullopt, std::nullopt, run_rnn_cell);
  }
}

TEST_CASE(
    "bidirectional RNN names its reverse parameters as PyTorch; dropout only between layers in training") {
  tg::Generator g1(4), g2(4);
  tg::RNN<double> m(3, 4, tg::RNNOptions().num_layers(2).bidirectional(true), g1);
  const auto params = m.named_parameters();
  REQUIRE(params.size() == 16);
  CHECK(params[4].first == "weight_ih_l0_reverse");
  CHECK(params[8].first == "weight_ih_l1");
  CHECK(params[8].second->value.shape() == tg::Shape{4, 8});
  CHECK(m.to_string() == "RNN(3, 4, num_layers=2, bidirectional=True)\n");
  CHECK(m.layer_params(0, true).bias_hh == params[7].second);

  tg::RNN<double> d(3, 4, tg::RNNOptions().num_layers(2).bidirectional(true).dropout(0.5), g2);
  CHECK(d.to_string() == "RNN(3, 4, num_layers=2, dropout=0.5, bidirectional=True)\n");
  tg::Tape<double> t;
  const auto x = t.input(randn({5, 2, 3}, 1));
  const auto reference = m.run(t, x).output.value();
  d.eval();
  CHECK((d.run(t, x).output.value() == reference));
  d.train();
  CHECK(max_abs_diff(d.run(t, x).output.value(), reference) > 1e-3);
  CHECK_THROWS_AS(tg::RNN<double>(3, 4, tg::RNNOptions().dropout(1.01)), tg::ValueError);
  CHECK_THROWS_AS(tg::RNN<double>(3, 4, tg::RNNOptions().dropout(-0.5)), tg::ValueError);
  CHECK(tg::RNNCell<float>(3, 4, tg::RNNCellOptions().bias(false).nonlinearity("relu")).to_string() ==
        "RNNCell(3, 4, bias=False, nonlinearity=relu)\n");
}

TEST_CASE(
    "RNNCell input of rank 3 or the wrong input_size, an h of the wrong shape, or a bad config are errors naming them") {
  tg::RNNCell<double> m(3, 4);
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 3}, 1)), x3 = t.input(randn({1, 2, 3}, 2)),
             wide = t.input(randn({2, 4}, 3));
  const auto h_bad = t.input(randn({3, 4}, 4));
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(m.run(t, x3), Catch::Contains("RNNCell") && Catch::Contains("(1, 2, 3)"));
  CHECK_THROWS_WITH(m.run(t, wide), Catch::Contains("got 4 expected 3"));
  CHECK_THROWS_WITH(m.run(t, x, h_bad), Catch::Contains("(2, 4)") && Catch::Contains("(3, 4)"));
  CHECK_THROWS_AS(m(t, x3), tg::ShapeError);
  CHECK(t.size() == n);
  CHECK_THROWS_AS(tg::RNNCell<double>(3, 0), tg::ValueError);
  CHECK_THROWS_WITH(tg::RNNCell<double>(3, 4, tg::RNNCellOptions().nonlinearity("gelu")),
                    Catch::Contains("'gelu'"));
}
