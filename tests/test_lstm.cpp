// lstm_layer (ops/lstm.hpp), the LSTM module (nn/lstm.hpp) and LSTMCell (nn/rnn_cell.hpp):
// against PyTorch 1.13 (tests/fixtures/lstm.json, gen_lstm.py), against the same recurrence
// composed from primitive ops, gradcheck on odd shapes, and bad inputs.
#include <cstring>
#include <optional>

#include "recurrent_reference.hpp"
#include "rnn_check.hpp"

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

}  // namespace

TEST_CASE("the fused lstm_layer equals the LSTM composed from linear, sigmoid and tanh per step") {
  for (const bool reverse : {false, true}) {
    for (const int optional : {0, 1, 2, 3}) {  // bit 0: h0 and c0 given; bit 1: biases given
      INFO("reverse " << reverse << ", states " << (optional & 1) << ", biases " << (optional >> 1));
      const auto v = lstm_values(5, 3, 4, 6, 10);
      const auto up = randn({6, 3, 6}, 17);
      xt::xarray<double> out[2];
      std::vector<xt::xarray<double>> grads[2];
      for (int fused = 0; fused < 2; ++fused) {
        tg::Tape<double> t;
        std::vector<tg::Var<double>> in;
        for (const auto& a : v) in.push_back(t.input(a, true));
        const tg::Var<double> none;
        const auto h0 = (optional & 1) ? in[1] : none, c0 = (optional & 1) ? in[2] : none;
        const auto b_ih = (optional & 2) ? in[5] : none, b_hh = (optional & 2) ? in[6] : none;
        const auto y = fused ? tg::lstm_layer(in[0], h0, c0, in[3], in[4], b_ih, b_hh, reverse)
                             : rnnref::composed_lstm_layer(in[0], h0, c0, in[3], in[4], b_ih, b_hh, reverse);
        out[fused] = y.value();
        t.backward(y, up);
        for (std::size_t k = 0; k < in.size(); ++k) {
          if (((k == 1 || k == 2) && !(optional & 1)) || (k >= 5 && !(optional & 2))) continue;
          grads[fused].push_back(in[k].grad());
        }
      }
      CHECK(max_abs_diff(out[0], out[1]) < 1e-14);
      REQUIRE(grads[0].size() == grads[1].size());
      for (std::size_t k = 0; k < grads[0].size(); ++k) {
        INFO("gradient " << k);
        CHECK(max_abs_diff(grads[0][k], grads[1][k]) < 1e-13);
      }
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
  struct Case {
    std::size_t T, N, I, H;
    bool reverse, states, bias;
  };
  const Case cases[] = {{1, 1, 1, 1, false, true, true}, {3, 1, 1, 1, true, true, true},
                        {1, 2, 3, 2, true, false, true}, {4, 2, 1, 3, false, false, false},
                        {3, 3, 2, 2, true, true, false}, {2, 1, 3, 1, false, true, true}};
  for (const auto& c : cases) {
    INFO("T " << c.T << ", N " << c.N << ", I " << c.I << ", H " << c.H << ", reverse " << c.reverse
              << ", states " << c.states << ", bias " << c.bias);
    auto v = lstm_values(c.T, c.N, c.I, c.H, 40 + c.T * 7 + c.H);
    if (!c.bias) v.resize(5);
    if (!c.states) v.erase(v.begin() + 1, v.begin() + 3);
    const Case cc = c;
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
