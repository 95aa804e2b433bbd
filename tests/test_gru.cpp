// gru_layer (ops/gru.hpp), the GRU module (nn/gru.hpp) and GRUCell (nn/rnn_cell.hpp): against
// PyTorch 1.13 (tests/fixtures/lstm.json, gen_lstm.py), against the same recurrence composed from
// primitive ops, gradcheck on odd shapes, and bad inputs.
#include <optional>

#include "recurrent_reference.hpp"
#include "rnn_check.hpp"

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::randn;

namespace {

// x, h0, W_ih, W_hh, b_ih, b_hh of one layer (values).
std::vector<xt::xarray<double>> gru_values(std::size_t T, std::size_t N, std::size_t I, std::size_t H,
                                           std::uint64_t seed) {
  return {randn({T, N, I}, seed),           randn({N, H}, seed + 1, 0.5),  randn({3 * H, I}, seed + 3, 0.5),
          randn({3 * H, H}, seed + 4, 0.5), randn({3 * H}, seed + 5, 0.3), randn({3 * H}, seed + 6, 0.3)};
}

}  // namespace

TEST_CASE("the fused gru_layer equals the GRU composed from linear, sigmoid and tanh per step") {
  for (const bool reverse : {false, true}) {
    for (const int optional : {0, 1, 2, 3}) {  // bit 0: h0 given; bit 1: biases given
      INFO("reverse " << reverse << ", h0 " << (optional & 1) << ", biases " << (optional >> 1));
      const auto v = gru_values(5, 3, 4, 6, 10);
      const auto up = randn({5, 3, 6}, 17);
      xt::xarray<double> out[2];
      std::vector<xt::xarray<double>> grads[2];
      for (int fused = 0; fused < 2; ++fused) {
        tg::Tape<double> t;
        std::vector<tg::Var<double>> in;
        for (const auto& a : v) in.push_back(t.input(a, true));
        const tg::Var<double> none;
        const auto h0 = (optional & 1) ? in[1] : none;
        const auto b_ih = (optional & 2) ? in[4] : none, b_hh = (optional & 2) ? in[5] : none;
        const auto y = fused ? tg::gru_layer(in[0], h0, in[2], in[3], b_ih, b_hh, reverse)
                             : rnnref::composed_gru_layer(in[0], h0, in[2], in[3], b_ih, b_hh, reverse);
        out[fused] = y.value();
        t.backward(y, up);
        for (std::size_t k = 0; k < in.size(); ++k) {
          if ((k == 1 && !(optional & 1)) || (k >= 4 && !(optional & 2))) continue;
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
  tg::Tape<double> t;
  const auto v = gru_values(4, 2, 3, 5, 1);
  const auto x = t.input(v[0], true), wih = t.input(v[2], true), whh = t.input(v[3], true);
  const std::size_t before = t.size();
  const auto y = tg::gru_layer(x, tg::Var<double>(), wih, whh, tg::Var<double>(), tg::Var<double>());
  CHECK(t.size() == before + 1);
  CHECK(y.shape() == tg::Shape{4, 2, 5});
}

TEST_CASE("gru_layer gradcheck on odd shapes: T = 1, batch 1, hidden 1, input 1, reverse, no h0") {
  struct Case {
    std::size_t T, N, I, H;
    bool reverse, state, bias;
  };
  const Case cases[] = {{1, 1, 1, 1, false, true, true}, {3, 1, 1, 1, true, true, true},
                        {1, 2, 3, 2, true, false, true}, {4, 2, 1, 3, false, false, false},
                        {3, 3, 2, 2, true, true, false}, {2, 1, 3, 1, false, true, true}};
  for (const auto& c : cases) {
    INFO("T " << c.T << ", N " << c.N << ", I " << c.I << ", H " << c.H << ", reverse " << c.reverse
              << ", h0 " << c.state << ", bias " << c.bias);
    auto v = gru_values(c.T, c.N, c.I, c.H, 40 + c.T * 7 + c.H);
    if (!c.bias) v.resize(4);
    if (!c.state) v.erase(v.begin() + 1);
    const Case cc = c;
    CHECK_GRADCHECK(
        [cc](tg::Tape<double>&, const std::vector<tg::Var<double>>& in) {
          const tg::Var<double> none;
          const std::size_t w = cc.state ? 2 : 1;  // where W_ih sits
          return tg::gru_layer(in[0], cc.state ? in[1] : none, in[w], in[w + 1], cc.bias ? in[w + 2] : none,
                               cc.bias ? in[w + 3] : none, cc.reverse);
        },
        v);
  }
}

TEST_CASE("float gru_layer agrees with the double one") {
  const auto v = gru_values(7, 3, 4, 16, 70);
  tg::Tape<double> td;
  tg::Tape<float> tf;
  std::vector<tg::Var<double>> d;
  std::vector<tg::Var<float>> f;
  for (const auto& a : v) {
    d.push_back(td.input(a, true));
    f.push_back(tf.input(xt::xarray<float>(xt::cast<float>(a)), true));
  }
  const auto yd = tg::gru_layer(d[0], d[1], d[2], d[3], d[4], d[5]);
  const auto yf = tg::gru_layer(f[0], f[1], f[2], f[3], f[4], f[5]);
  const auto up = randn({7, 3, 16}, 71);
  td.backward(yd, up);
  tf.backward(yf, xt::xarray<float>(xt::cast<float>(up)));
  CHECK(max_abs_diff(yd.value(), yf.value()) < 1e-6);  // measured 2.4e-7
  for (std::size_t k = 0; k < v.size(); ++k) {
    INFO("gradient " << k);
    CHECK(max_abs_diff(d[k].grad(), f[k].grad()) < 1e-5);  // measured 1.4e-6
  }
}

TEST_CASE(
    "gru_layer with mismatched x, weights, h0 or biases is a ShapeError naming the shapes; tape unchanged") {
  tg::Tape<double> t;
  const auto v = gru_values(4, 2, 3, 5, 80);
  const auto x = t.input(v[0]), h0 = t.input(v[1]), wih = t.input(v[2]), whh = t.input(v[3]),
             bih = t.input(v[4]), bhh = t.input(v[5]);
  const auto x2 = t.input(randn({4, 3}, 1)), wih_i = t.input(randn({15, 2}, 2)),
             wih_rows = t.input(randn({16, 3}, 3));
  const auto whh_bad = t.input(randn({15, 4}, 4)), h0_bad = t.input(randn({3, 5}, 5)),
             b_bad = t.input(randn({5}, 6));
  const tg::Var<double> none;
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(tg::gru_layer(x2, h0, wih, whh, bih, bhh),
                    Catch::Contains("3-D") && Catch::Contains("(4, 3)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, h0, wih_i, whh, bih, bhh),
                    Catch::Contains("W_ih must have shape (15, 3)") && Catch::Contains("(15, 2)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, h0, wih_rows, whh, bih, bhh),
                    Catch::Contains("(3*hidden_size, input_size)") && Catch::Contains("(16, 3)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, h0, wih, whh_bad, bih, bhh),
                    Catch::Contains("W_hh must have shape (15, 5)") && Catch::Contains("(15, 4)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, h0_bad, wih, whh, bih, bhh),
                    Catch::Contains("h0 must have shape (2, 5)") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, none, wih, whh, b_bad, none),
                    Catch::Contains("b_ih must have shape (15)"));
  CHECK_THROWS_WITH(tg::gru_layer(x, none, wih, whh, none, b_bad), Catch::Contains("b_hh"));
  CHECK_THROWS_AS(tg::gru_layer(x, h0, wih_i, whh, bih, bhh), tg::ShapeError);
  CHECK_THROWS_AS(tg::gru_layer(x, h0, wih_rows, whh, bih, bhh), tg::ShapeError);
  CHECK_THROWS_AS(tg::gru_layer(x, h0, wih, whh_bad, bih, bhh), tg::ShapeError);
  CHECK(t.size() == n);
}

TEST_CASE("gru_layer on an empty sequence is a ValueError, a foreign or stale input a StateError naming it") {
  tg::Tape<double> t, other;
  const auto v = gru_values(4, 2, 3, 5, 90);
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 3}));
  const auto x = t.input(v[0]), wih = t.input(v[2]), whh = t.input(v[3]);
  const auto foreign_h0 = other.input(v[1]);
  const tg::Var<double> none;
  const std::size_t n = t.size();
  CHECK_THROWS_AS(tg::gru_layer(empty, none, wih, whh, none, none), tg::ValueError);
  CHECK_THROWS_WITH(tg::gru_layer(empty, none, wih, whh, none, none), Catch::Contains("seq_len 0"));
  CHECK_THROWS_AS(tg::gru_layer(x, foreign_h0, wih, whh, none, none), tg::StateError);
  CHECK_THROWS_WITH(tg::gru_layer(x, foreign_h0, wih, whh, none, none),
                    Catch::Contains("gru_layer") && Catch::Contains("input 1"));
  CHECK(t.size() == n);
  t.reset();
  const auto x_again = t.input(v[0]);
  CHECK_THROWS_AS(tg::gru_layer(x_again, none, wih, whh, none, none), tg::StateError);
}
