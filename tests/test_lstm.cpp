// lstm_layer (ops/lstm.hpp), the LSTM module (nn/lstm.hpp) and LSTMCell (nn/rnn_cell.hpp):
// against PyTorch 1.13 (tests/fixtures/lstm.json, gen_lstm.py), against the same recurrence
// composed from primitive ops, gradcheck on odd shapes, and bad inputs.
#include <cstring>
#include <optional>

#include "recurrent_fixture.hpp"
#include "recurrent_reference.hpp"

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::randn;

namespace {

// x, h0, c0, W_ih, W_hh, b_ih, b_hh of one layer (values), for I inputs, H units, N, T.
std::vector<xt::xarray<double>> lstm_values(std::size_t T, std::size_t N, std::size_t I, std::size_t H,
                                            std::uint64_t seed) {
  return {randn({T, N, I}, seed),           randn({N, H}, seed + 1, 0.5),     randn({N, H}, seed + 2, 0.5),
          randn({4 * H, I}, seed + 3, 0.5), randn({4 * H, H}, seed + 4, 0.5), randn({4 * H}, seed + 5, 0.3),
          randn({4 * H}, seed + 6, 0.3)};
}

// LSTM::run as named results, for rnnfx::check_case and gradcheck_module.
const auto run_lstm = [](tg::LSTM<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                         const tg::Var<double>& h0, const tg::Var<double>& c0) {
  const auto r = m.run(t, x, h0, c0);
  return rnnfx::Named{{"output", r.output}, {"h_n", r.h_n}, {"c_n", r.c_n}};
};
const auto run_cell = [](tg::LSTMCell<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                         const tg::Var<double>& h0, const tg::Var<double>& c0) {
  const auto r = m.run(t, x, h0, c0);
  return rnnfx::Named{{"h", r.h}, {"c", r.c}};
};

}  // namespace

TEST_CASE("the fused lstm_layer equals the LSTM composed from linear, sigmoid and tanh per step") {
  for (const bool reverse : {false, true}) {
    for (const int optional : {0, 1, 2, 3}) {  // bit 0: h0 and c0 given; bit 1: biases given
      INFO("reverse " << reverse << ", states " << (optional & 1) << ", biases " << (optional >> 1));
      const auto v = lstm_values(5, 3, 4, 6, 10);
      const bool states = optional & 1, biases = optional & 2;
      const std::vector<bool> used = {true, states, states, true, true, biases, biases};
      rnnfx::check_fused_equals_composed(
          v, used, randn({6, 3, 6}, 17),
          [&](bool fused, const std::vector<tg::Var<double>>& in) {
            const tg::Var<double> none;
            const auto h0 = states ? in[1] : none, c0 = states ? in[2] : none;
            const auto b_ih = biases ? in[5] : none, b_hh = biases ? in[6] : none;
            return fused ? tg::lstm_layer(in[0], h0, c0, in[3], in[4], b_ih, b_hh, reverse)
                         : rnnref::composed_lstm_layer(in[0], h0, c0, in[3], in[4], b_ih, b_hh, reverse);
          },
          1e-14, 1e-13);
    }
  }
  // The fused layer is one node for the whole sequence.
  tg::Tape<double> t;
  const auto v = lstm_values(4, 2, 3, 5, 1);
  const auto x = t.input(v[0], true), wih = t.input(v[3], true), whh = t.input(v[4], true);
  const std::size_t before = t.size();
  const auto y =
      tg::lstm_layer(x, tg::Var<double>(), tg::Var<double>(), wih, whh, tg::Var<double>(), tg::Var<double>());
  CHECK(t.size() == before + 1);
  CHECK(y.shape() == tg::Shape{5, 2, 5});
}

TEST_CASE("lstm_layer gradcheck on odd shapes: T = 1, batch 1, hidden 1, input 1, reverse, no states") {
  for (const auto& c : rnnfx::kOddLayerCases) {
    INFO("T " << c.T << ", N " << c.N << ", I " << c.I << ", H " << c.H << ", reverse " << c.reverse
              << ", states " << c.states << ", bias " << c.bias);
    auto v = lstm_values(c.T, c.N, c.I, c.H, 40 + c.T * 7 + c.H);
    if (!c.bias) v.resize(5);
    if (!c.states) v.erase(v.begin() + 1, v.begin() + 3);
    const rnnfx::OddLayerCase cc = c;
    CHECK_GRADCHECK(
        [cc](tg::Tape<double>&, const std::vector<tg::Var<double>>& in) {
          const tg::Var<double> none;
          const std::size_t w = cc.states ? 3 : 1;  // where W_ih sits
          return tg::lstm_layer(in[0], cc.states ? in[1] : none, cc.states ? in[2] : none, in[w], in[w + 1],
                                cc.bias ? in[w + 2] : none, cc.bias ? in[w + 3] : none, cc.reverse);
        },
        v);
  }
}

TEST_CASE("split_lstm_layer gives the output, h_n and c_n rows, with gradients into lstm_layer") {
  tg::Tape<double> t;
  const auto v = lstm_values(3, 2, 2, 3, 60);
  for (const bool reverse : {false, true}) {
    const auto y = tg::lstm_layer(t.input(v[0]), t.input(v[1]), t.input(v[2]), t.input(v[3]), t.input(v[4]),
                                  t.input(v[5]), t.input(v[6]), reverse);
    const auto p = tg::split_lstm_layer(y, reverse);
    CHECK(p.output.shape() == tg::Shape{3, 2, 3});
    CHECK(p.h_n.shape() == tg::Shape{2, 3});
    const auto& yv = y.value();
    for (std::size_t n = 0; n < 2; ++n) {
      for (std::size_t j = 0; j < 3; ++j) {
        CHECK(p.h_n.value()(n, j) == yv(reverse ? 0 : 2, n, j));
        CHECK(p.c_n.value()(n, j) == yv(3, n, j));
      }
    }
  }
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const std::vector<tg::Var<double>>& in) {
        const auto p = tg::split_lstm_layer(
            tg::lstm_layer(in[0], in[1], in[2], in[3], in[4], tg::Var<double>(), tg::Var<double>()));
        return tg::concat(std::vector<tg::Var<double>>{tg::reshape(p.c_n, {-1}), tg::reshape(p.h_n, {-1})},
                          0);
      },
      {v[0], v[1], v[2], v[3], v[4]});
}

TEST_CASE("float lstm_layer agrees with the double one") {
  const auto v = lstm_values(7, 3, 4, 16, 70);
  tg::Tape<double> td;
  tg::Tape<float> tf;
  std::vector<tg::Var<double>> d;
  std::vector<tg::Var<float>> f;
  for (const auto& a : v) {
    d.push_back(td.input(a, true));
    f.push_back(tf.input(xt::xarray<float>(xt::cast<float>(a)), true));
  }
  const auto yd = tg::lstm_layer(d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
  const auto yf = tg::lstm_layer(f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
  const auto up = randn({8, 3, 16}, 71);
  td.backward(yd, up);
  tf.backward(yf, xt::xarray<float>(xt::cast<float>(up)));
  CHECK(max_abs_diff(yd.value(), yf.value()) < 1e-6);  // measured 1.6e-7
  for (std::size_t k = 0; k < v.size(); ++k) {
    INFO("gradient " << k);
    CHECK(max_abs_diff(d[k].grad(), f[k].grad()) < 1e-5);  // measured 1.3e-6 (sums over 21 rows)
  }
}

TEST_CASE(
    "lstm_layer with mismatched x, weights, h0, c0 or biases is a ShapeError naming the shapes; tape unchanged") {
  tg::Tape<double> t;
  const auto v = lstm_values(4, 2, 3, 5, 80);
  const auto x = t.input(v[0]), h0 = t.input(v[1]), c0 = t.input(v[2]), wih = t.input(v[3]),
             whh = t.input(v[4]), bih = t.input(v[5]), bhh = t.input(v[6]);
  const auto x2 = t.input(randn({4, 3}, 1)), wih_i = t.input(randn({20, 2}, 2)),
             wih_rows = t.input(randn({18, 3}, 3));
  const auto whh_bad = t.input(randn({20, 4}, 4)), state_bad = t.input(randn({3, 5}, 5)),
             b_bad = t.input(randn({5}, 6));
  const tg::Var<double> none;
  const std::size_t n = t.size();
  CHECK_THROWS_AS(tg::lstm_layer(x2, h0, c0, wih, whh, bih, bhh), tg::ShapeError);
  CHECK_THROWS_WITH(tg::lstm_layer(x2, h0, c0, wih, whh, bih, bhh),
                    Catch::Contains("3-D") && Catch::Contains("(4, 3)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, h0, c0, wih_i, whh, bih, bhh),
                    Catch::Contains("W_ih must have shape (20, 3)") && Catch::Contains("(20, 2)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, h0, c0, wih_rows, whh, bih, bhh),
                    Catch::Contains("(4*hidden_size, input_size)") && Catch::Contains("(18, 3)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, h0, c0, wih, whh_bad, bih, bhh),
                    Catch::Contains("W_hh must have shape (20, 5)") && Catch::Contains("(20, 4)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, state_bad, c0, wih, whh, bih, bhh),
                    Catch::Contains("h0 must have shape (2, 5)") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, h0, state_bad, wih, whh, bih, bhh),
                    Catch::Contains("c0 must have shape (2, 5)") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, none, none, wih, whh, b_bad, none),
                    Catch::Contains("b_ih must have shape (20)") && Catch::Contains("got (5)"));
  CHECK_THROWS_WITH(tg::lstm_layer(x, none, none, wih, whh, none, b_bad), Catch::Contains("b_hh"));
  for (const auto& w : {wih_i, wih_rows})
    CHECK_THROWS_AS(tg::lstm_layer(x, h0, c0, w, whh, bih, bhh), tg::ShapeError);
  CHECK_THROWS_AS(tg::lstm_layer(x, h0, state_bad, wih, whh, bih, bhh), tg::ShapeError);
  CHECK(t.size() == n);
}

TEST_CASE(
    "lstm_layer on an empty sequence is a ValueError, a foreign or stale input a StateError naming it") {
  tg::Tape<double> t, other;
  const auto v = lstm_values(4, 2, 3, 5, 90);
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 3}));
  const auto x = t.input(v[0]), wih = t.input(v[3]), whh = t.input(v[4]);
  const auto foreign_c0 = other.input(v[2]);
  const tg::Var<double> none;
  const std::size_t n = t.size();
  CHECK_THROWS_AS(tg::lstm_layer(empty, none, none, wih, whh, none, none), tg::ValueError);
  CHECK_THROWS_WITH(tg::lstm_layer(empty, none, none, wih, whh, none, none), Catch::Contains("seq_len 0"));
  CHECK_THROWS_AS(tg::lstm_layer(x, none, foreign_c0, wih, whh, none, none), tg::StateError);
  CHECK_THROWS_WITH(tg::lstm_layer(x, none, foreign_c0, wih, whh, none, none),
                    Catch::Contains("lstm_layer") && Catch::Contains("input 2"));
  CHECK(t.size() == n);
  const auto y = tg::lstm_layer(x, none, none, wih, whh, none, none);
  t.reset();
  const auto x_again = t.input(v[0]);
  CHECK_THROWS_AS(tg::lstm_layer(x_again, none, none, wih, whh, none, none), tg::StateError);
  CHECK_THROWS_AS(tg::split_lstm_layer(y), tg::StateError);
}

TEST_CASE(
    "split_lstm_layer of a Var that is not (T + 1, N, H) with T >= 1 is a ShapeError naming the shape") {
  tg::Tape<double> t;
  const auto one_row = t.input(randn({1, 2, 3}, 1)), flat = t.input(randn({4, 3}, 2));
  const std::size_t n = t.size();
  CHECK_THROWS_AS(tg::split_lstm_layer(one_row), tg::ShapeError);
  CHECK_THROWS_WITH(tg::split_lstm_layer(one_row), Catch::Contains("(1, 2, 3)"));
  CHECK_THROWS_WITH(tg::split_lstm_layer(flat), Catch::Contains("(4, 3)"));
  CHECK(t.size() == n);
}

// ---- the LSTM module and LSTMCell ------------------------------------------------------------

TEST_CASE("LSTM matches torch.nn.LSTM: output, h_n, c_n and every gradient, in every configuration") {
  rnnfx::check_module_cases<tg::LSTM<double>, tg::LSTMOptions>("LSTM", 10, run_lstm);
}

TEST_CASE("LSTMCell matches torch.nn.LSTMCell: h, c and every gradient, batched and unbatched") {
  rnnfx::check_module_cases<tg::LSTMCell<double>, tg::LSTMCellOptions>("LSTMCell", 4, run_cell);
}

TEST_CASE("LSTM gradcheck w.r.t. input, h0, c0 and all parameters on odd shapes") {
  tg::Generator gen(5);
  SECTION("hidden 1, input 1, T = 1, batch 1, with h0 and c0") {
    tg::LSTM<double> m(1, 1, tg::LSTMOptions(), gen);
    CHECK_GRADCHECK_MODULE(m, randn({1, 1, 1}, 1), randn({1, 1, 1}, 2, 0.5), randn({1, 1, 1}, 3, 0.5),
                           run_lstm);
  }
  SECTION("two bidirectional layers, batch 1, with h0 and c0") {
    tg::LSTM<double> m(2, 2, tg::LSTMOptions().num_layers(2).bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({3, 1, 2}, 4), randn({4, 1, 2}, 5, 0.5), randn({4, 1, 2}, 6, 0.5),
                           run_lstm);
  }
  SECTION("batch_first, no bias, two layers, no states") {
    tg::LSTM<double> m(3, 2, tg::LSTMOptions().num_layers(2).bias(false).batch_first(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({2, 3, 3}, 7), std::nullopt, std::nullopt, run_lstm);
  }
  SECTION("unbatched, bidirectional, h0 without c0") {
    tg::LSTM<double> m(2, 3, tg::LSTMOptions().bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({4, 2}, 8), randn({2, 3}, 9, 0.5), std::nullopt, run_lstm);
  }
  SECTION("LSTMCell: batch 1, hidden 1, input 1; unbatched; no bias") {
    tg::LSTMCell<double> a(1, 1, tg::LSTMCellOptions(), gen);
    CHECK_GRADCHECK_MODULE(a, randn({1, 1}, 10), randn({1, 1}, 11), randn({1, 1}, 12), run_cell);
    tg::LSTMCell<double> b(3, 2, tg::LSTMCellOptions().bias(false), gen);
    CHECK_GRADCHECK_MODULE(b, randn({3}, 13), randn({2}, 14), randn({2}, 15), run_cell);
    CHECK_GRADCHECK_MODULE(b, randn({2, 3}, 16), std::nullopt, std::nullopt, run_cell);
  }
}

TEST_CASE("LSTM uses PyTorch's parameter names, shapes, order and init range, and prints as PyTorch") {
  tg::Generator gen(7);
  tg::LSTM<float> m(3, 16, tg::LSTMOptions().num_layers(2).bidirectional(true), gen);
  std::vector<std::string> names;
  for (auto& [name, p] : m.named_parameters()) {
    names.push_back(name);
    for (float v : p->value) CHECK(std::abs(v) <= 0.25f);  // 1 / sqrt(16)
  }
  CHECK(names == std::vector<std::string>{
                     "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                     "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1",
                     "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse",
                     "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  const auto sd = m.state_dict();
  CHECK(sd.at("weight_ih_l0").shape() == tg::Shape{64, 3});
  CHECK(sd.at("weight_ih_l1").shape() == tg::Shape{64, 32});
  CHECK(sd.at("weight_hh_l1_reverse").shape() == tg::Shape{64, 16});
  CHECK(sd.at("bias_hh_l0").shape() == tg::Shape{64});
  CHECK(m.layer_params(1, true).weight_hh == m.named_parameters()[13].second);
  CHECK_THROWS_AS(m.layer_params(2), tg::ValueError);
  CHECK(tg::LSTM<float>(3, 4, tg::LSTMOptions().bias(false)).named_parameters().size() == 2);
  CHECK_THROWS_AS(tg::LSTM<float>(3, 4).layer_params(0, true), tg::ValueError);
  CHECK(m.to_string() == "LSTM(3, 16, num_layers=2, bidirectional=True)\n");
  CHECK(tg::LSTM<float>(3, 4, tg::LSTMOptions().bias(false).batch_first(true).dropout(0.5)).to_string() ==
        "LSTM(3, 4, bias=False, batch_first=True, dropout=0.5)\n");
  CHECK(tg::LSTMCell<float>(3, 4, tg::LSTMCellOptions().bias(false)).to_string() ==
        "LSTMCell(3, 4, bias=False)\n");
  const auto cell = tg::LSTMCell<float>(5, 2).state_dict();
  CHECK(cell.at("weight_ih").shape() == tg::Shape{8, 5});
  CHECK(cell.at("bias_hh").shape() == tg::Shape{8});
}

TEST_CASE("LSTM shapes follow torch.nn.LSTM; h_n and c_n are the last states of each layer and direction") {
  tg::Generator gen(8);
  tg::LSTM<double> m(3, 4, tg::LSTMOptions().num_layers(2).batch_first(true).bidirectional(true), gen);
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 5, 3}, 1));
  const auto r = m.run(t, x);
  CHECK(r.output.shape() == tg::Shape{2, 5, 8});
  CHECK(r.h_n.shape() == tg::Shape{4, 2, 4});
  CHECK(r.c_n.shape() == tg::Shape{4, 2, 4});
  CHECK((m.forward(t, x).value() == r.output.value()));
  // h_n's top layer: the forward direction's state at the last step, the reverse one's at t = 0.
  for (std::size_t n = 0; n < 2; ++n) {
    for (std::size_t j = 0; j < 4; ++j) {
      CHECK(r.h_n.value()(2, n, j) == r.output.value()(n, 4, j));
      CHECK(r.h_n.value()(3, n, j) == r.output.value()(n, 0, 4 + j));
    }
  }
  // Unbatched: (T, I) in, (T, D*H), (D*L, H) out.
  const auto u = m.run(t, t.input(randn({5, 3}, 2)));
  CHECK(u.output.shape() == tg::Shape{5, 8});
  CHECK(u.c_n.shape() == tg::Shape{4, 4});
}

TEST_CASE("LSTM: h0 without c0 (or c0 without h0) is the same as the missing state given as zeros") {
  tg::Generator gen(9);
  tg::LSTM<double> m(3, 4, tg::LSTMOptions().num_layers(2), gen);
  const auto xv = randn({4, 2, 3}, 1), sv = randn({2, 2, 4}, 2);
  const xt::xarray<double> zeros = xt::zeros<double>({2, 2, 4});
  for (const bool give_h : {true, false}) {
    tg::Tape<double> t;
    const auto x = t.input(xv), s = t.input(sv), z = t.input(zeros);
    const auto one = give_h ? m.run(t, x, s) : m.run(t, x, tg::Var<double>(), s);
    const auto both = give_h ? m.run(t, x, s, z) : m.run(t, x, z, s);
    CHECK((one.output.value() == both.output.value()));
    CHECK((one.c_n.value() == both.c_n.value()));
  }
}

TEST_CASE("LSTM dropout: none in eval mode or after the last layer; seeded and applied in training") {
  tg::Generator g1(3), g2(3);
  tg::LSTM<double> plain(3, 5, tg::LSTMOptions().num_layers(2), g1);
  tg::LSTM<double> dropped(3, 5, tg::LSTMOptions().num_layers(2).dropout(0.5), g2);
  CHECK((plain.state_dict().at("weight_hh_l1") == dropped.state_dict().at("weight_hh_l1")));  // same init
  const auto xv = randn({4, 3, 3}, 1);
  tg::Tape<double> t;
  const auto x = t.input(xv);
  const auto reference = plain.run(t, x).output.value();
  dropped.eval();
  CHECK((dropped.run(t, x).output.value() == reference));  // p > 0 in eval: no dropout
  dropped.train();
  const auto a = dropped.run(t, x).output.value(), b = dropped.run(t, x).output.value();
  CHECK(max_abs_diff(a, reference) > 1e-3);  // dropped units change the second layer's input
  CHECK(max_abs_diff(a, b) > 1e-3);          // a new mask each call
  // One layer: nothing between layers to drop (PyTorch warns and applies none).
  tg::Generator g3(3), g4(3);
  tg::LSTM<double> one(3, 5, tg::LSTMOptions(), g3), one_dropped(3, 5, tg::LSTMOptions().dropout(0.9), g4);
  CHECK((one.run(t, x).output.value() == one_dropped.run(t, x).output.value()));
  // The same seed drops the same units.
  tg::Generator g5(3), g6(3);
  tg::LSTM<double> m1(3, 5, tg::LSTMOptions().num_layers(2).dropout(0.5), g5);
  tg::LSTM<double> m2(3, 5, tg::LSTMOptions().num_layers(2).dropout(0.5), g6);
  CHECK((m1.run(t, x).output.value() == m2.run(t, x).output.value()));
}

TEST_CASE("LSTM's forward direction of a bidirectional model equals a unidirectional LSTM with its weights") {
  tg::Generator gen(10);
  tg::LSTM<double> bi(3, 4, tg::LSTMOptions().bidirectional(true), gen), uni(3, 4, tg::LSTMOptions(), gen);
  tg::StateDict<double> sd;
  for (const auto& [k, v] : bi.state_dict()) {
    if (k.find("_reverse") == std::string::npos) sd[k] = v;
  }
  uni.load_state_dict(sd);
  tg::Tape<double> t;
  const auto x = t.input(randn({5, 2, 3}, 1));
  const auto yb = bi.run(t, x).output.value(), yu = uni.run(t, x).output.value();
  for (std::size_t s = 0; s < 5; ++s) {
    for (std::size_t n = 0; n < 2; ++n) {
      for (std::size_t j = 0; j < 4; ++j) CHECK(yb(s, n, j) == yu(s, n, j));
    }
  }
}

TEST_CASE("float LSTM agrees with the double one; batch-invariant mode keeps a sequence's states") {
  tg::LSTM<double> d(4, 16, tg::LSTMOptions().num_layers(2).bidirectional(true));
  tg::LSTM<float> f(4, 16, tg::LSTMOptions().num_layers(2).bidirectional(true));
  tg::StateDict<float> sf;
  for (const auto& [k, v] : d.state_dict()) sf[k] = xt::xarray<float>(xt::cast<float>(v));
  f.load_state_dict(sf);
  tg::Tape<double> td;
  tg::Tape<float> tf;
  const auto xv = randn({7, 3, 4}, 3);
  const auto yd = d.forward(td, td.input(xv));
  const auto yf = f.forward(tf, tf.input(xt::xarray<float>(xt::cast<float>(xv))));
  CHECK(max_abs_diff(yd.value(), yf.value()) < 1e-6);

  tg::BatchInvariantGuard guard;
  const auto xb = randn<float>({5, 9, 4}, 12);
  const auto all = f.forward(tf, tf.input(xb)).value();
  xt::xarray<float> one = xt::xarray<float>::from_shape({5, 1, 4});
  for (std::size_t s = 0; s < 5; ++s) {
    for (std::size_t i = 0; i < 4; ++i) one(s, 0, i) = xb(s, 6, i);
  }
  const auto y = f.forward(tf, tf.input(one)).value();
  std::size_t differing = 0;
  for (std::size_t s = 0; s < 5; ++s) {
    for (std::size_t j = 0; j < 32; ++j) differing += y(s, 0, j) != all(s, 6, j);
  }
  CHECK(differing == 0);
}

TEST_CASE(
    "LSTM input of rank 1 or 4, or of the wrong input_size, is a ShapeError naming the shapes; tape unchanged") {
  tg::LSTM<double> m(3, 4, tg::LSTMOptions().num_layers(2));
  tg::Tape<double> t;
  const auto rank4 = t.input(randn({5, 2, 3, 1}, 1)), rank1 = t.input(randn({3}, 2)),
             wide = t.input(randn({5, 2, 4}, 3));
  const std::size_t n = t.size();
  CHECK_THROWS_AS(m.run(t, rank4), tg::ShapeError);
  CHECK_THROWS_WITH(m.run(t, rank4), Catch::Contains("LSTM") && Catch::Contains("(5, 2, 3, 1)"));
  CHECK_THROWS_AS(m.run(t, rank1), tg::ShapeError);
  CHECK_THROWS_WITH(m.run(t, wide), Catch::Contains("Expected 3, got 4") && Catch::Contains("(5, 2, 4)"));
  CHECK_THROWS_AS(m(t, wide), tg::ShapeError);
  CHECK(t.size() == n);
}

TEST_CASE("LSTM h0 or c0 of the wrong shape is a ShapeError naming the expected and actual shapes") {
  tg::LSTM<double> m(3, 4, tg::LSTMOptions().num_layers(2).bidirectional(true));
  tg::Tape<double> t;
  const auto x = t.input(randn({5, 2, 3}, 1)), ux = t.input(randn({5, 3}, 2));
  const auto good = t.input(randn({4, 2, 4}, 3)), layers = t.input(randn({2, 2, 4}, 4)),
             unbatched = t.input(randn({4, 4}, 5));
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(m.run(t, x, layers, good),
                    Catch::Contains("expected hidden size (4, 2, 4)") && Catch::Contains("(2, 2, 4)"));
  CHECK_THROWS_AS(m.run(t, x, good, layers), tg::ShapeError);
  CHECK_THROWS_WITH(m.run(t, x, good, layers),
                    Catch::Contains("c0") && Catch::Contains("(4, 2, 4)") && Catch::Contains("(2, 2, 4)"));
  CHECK_THROWS_AS(m.run(t, x, good, unbatched), tg::ShapeError);
  CHECK_THROWS_AS(m.run(t, ux, unbatched, good), tg::ShapeError);
  CHECK_NOTHROW(m.run(t, ux, unbatched, unbatched));
  t.truncate(n);
  tg::Tape<double> other;
  const auto foreign = other.input(randn({4, 2, 4}, 6));
  CHECK_THROWS_AS(m.run(t, x, good, foreign), tg::StateError);
  CHECK(t.size() == n);
}

TEST_CASE("LSTM on an empty sequence is a ValueError; the tape is unchanged") {
  tg::LSTM<double> m(3, 4);
  tg::Tape<double> t;
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 3}));
  const auto empty_bf = t.input(xt::xarray<double>::from_shape({2, 0, 3}));
  const std::size_t n = t.size();
  CHECK_THROWS_AS(m.run(t, empty), tg::ValueError);
  CHECK_THROWS_WITH(m.run(t, empty), Catch::Contains("(0, 2, 3)"));
  tg::LSTM<double> bf(3, 4, tg::LSTMOptions().batch_first(true));
  CHECK_THROWS_AS(bf.run(t, empty_bf), tg::ValueError);
  CHECK(t.size() == n);
}

TEST_CASE(
    "LSTM and LSTMCell with hidden_size 0, num_layers 0 or dropout outside [0, 1] are ValueErrors naming it") {
  CHECK_THROWS_AS(tg::LSTM<double>(3, 0), tg::ValueError);
  CHECK_THROWS_WITH(tg::LSTM<double>(3, 0), Catch::Contains("hidden_size") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(tg::LSTM<double>(3, 4, tg::LSTMOptions().num_layers(0)), Catch::Contains("num_layers"));
  CHECK_THROWS_WITH(tg::LSTM<double>(3, 4, tg::LSTMOptions().dropout(-0.1)), Catch::Contains("-0.1"));
  CHECK_THROWS_WITH(tg::LSTM<double>(3, 4, tg::LSTMOptions().dropout(1.5)), Catch::Contains("1.5"));
  CHECK_THROWS_AS(tg::LSTM<double>(3, 4, tg::LSTMOptions().dropout(std::nan(""))), tg::ValueError);
  CHECK_NOTHROW(tg::LSTM<double>(3, 4, tg::LSTMOptions().dropout(1.0)));  // PyTorch allows p = 1
  CHECK_THROWS_AS(tg::LSTM<double>(std::size_t(-1), 4), tg::ValueError);
  CHECK_THROWS_AS(tg::LSTM<double>(3, std::size_t(1) << 40), tg::ValueError);
  CHECK_THROWS_AS(tg::LSTMCell<double>(3, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::LSTMCell<double>(std::size_t(1) << 40, 1 << 22), tg::ValueError);
}

TEST_CASE(
    "LSTMCell input of rank 3, the wrong input_size, or h or c of the wrong shape is a ShapeError naming them") {
  tg::LSTMCell<double> m(3, 4);
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 3}, 1)), x3 = t.input(randn({1, 2, 3}, 2)),
             wide = t.input(randn({2, 5}, 3));
  const auto h_bad = t.input(randn({3, 4}, 4)), h_ok = t.input(randn({2, 4}, 5)), h1 = t.input(randn({4}, 6));
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(m.run(t, x3), Catch::Contains("1-D") && Catch::Contains("(1, 2, 3)"));
  CHECK_THROWS_WITH(m.run(t, wide), Catch::Contains("got 5 expected 3"));
  CHECK_THROWS_WITH(m.run(t, x, h_bad),
                    Catch::Contains("expected h of shape (2, 4)") && Catch::Contains("(3, 4)"));
  CHECK_THROWS_WITH(m.run(t, x, h_ok, h1),
                    Catch::Contains("expected c of shape (2, 4)") && Catch::Contains("(4)"));
  CHECK_THROWS_AS(m.run(t, x, h1), tg::ShapeError);
  CHECK(t.size() == n);
}
