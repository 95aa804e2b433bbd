// gru_layer (ops/gru.hpp), the GRU module (nn/gru.hpp) and GRUCell (nn/rnn_cell.hpp): against
// PyTorch 1.13 (tests/fixtures/lstm.json, gen_lstm.py), against the same recurrence composed from
// primitive ops, gradcheck on odd shapes, and bad inputs.
#include <optional>

#include "recurrent_fixture.hpp"
#include "recurrent_reference.hpp"

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

// GRU::run and GRUCell::run as named results, for rnnfx::check_case and gradcheck_module.
const auto run_gru = [](tg::GRU<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                        const tg::Var<double>& h0, const tg::Var<double>&) {
  const auto r = m.run(t, x, h0);
  return rnnfx::Named{{"output", r.output}, {"h_n", r.h_n}};
};
const auto run_cell = [](tg::GRUCell<double>& m, tg::Tape<double>& t, const tg::Var<double>& x,
                         const tg::Var<double>& h0, const tg::Var<double>&) {
  return rnnfx::Named{{"h", m.run(t, x, h0)}};
};

}  // namespace

TEST_CASE("the fused gru_layer equals the GRU composed from linear, sigmoid and tanh per step") {
  for (const bool reverse : {false, true}) {
    for (const int optional : {0, 1, 2, 3}) {  // bit 0: h0 given; bit 1: biases given
      INFO("reverse " << reverse << ", h0 " << (optional & 1) << ", biases " << (optional >> 1));
      const auto v = gru_values(5, 3, 4, 6, 10);
      const bool with_h0 = optional & 1, biases = optional & 2;
      const std::vector<bool> used = {true, with_h0, true, true, biases, biases};
      rnnfx::check_fused_equals_composed(
          v, used, randn({5, 3, 6}, 17),
          [&](bool fused, const std::vector<tg::Var<double>>& in) {
            const tg::Var<double> none;
            const auto h0 = with_h0 ? in[1] : none;
            const auto b_ih = biases ? in[4] : none, b_hh = biases ? in[5] : none;
            return fused ? tg::gru_layer(in[0], h0, in[2], in[3], b_ih, b_hh, reverse)
                         : rnnref::composed_gru_layer(in[0], h0, in[2], in[3], b_ih, b_hh, reverse);
          },
          1e-14, 1e-13);
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
  for (const auto& c : rnnfx::kOddLayerCases) {
    INFO("T " << c.T << ", N " << c.N << ", I " << c.I << ", H " << c.H << ", reverse " << c.reverse
              << ", h0 " << c.states << ", bias " << c.bias);
    auto v = gru_values(c.T, c.N, c.I, c.H, 40 + c.T * 7 + c.H);
    if (!c.bias) v.resize(4);
    if (!c.states) v.erase(v.begin() + 1);
    const rnnfx::OddLayerCase cc = c;
    CHECK_GRADCHECK(
        [cc](tg::Tape<double>&, const std::vector<tg::Var<double>>& in) {
          const tg::Var<double> none;
          const std::size_t w = cc.states ? 2 : 1;  // where W_ih sits
          return tg::gru_layer(in[0], cc.states ? in[1] : none, in[w], in[w + 1], cc.bias ? in[w + 2] : none,
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

// ---- the GRU module and GRUCell ----------------------------------------------------------------

TEST_CASE("GRU matches torch.nn.GRU: output, h_n and every gradient, in every configuration") {
  rnnfx::check_module_cases<tg::GRU<double>, tg::GRUOptions>("GRU", 10, run_gru);
}

TEST_CASE("GRUCell matches torch.nn.GRUCell: h and every gradient, batched and unbatched") {
  rnnfx::check_module_cases<tg::GRUCell<double>, tg::GRUCellOptions>("GRUCell", 4, run_cell);
}

TEST_CASE("GRU gradcheck w.r.t. input, h0 and all parameters on odd shapes") {
  tg::Generator gen(5);
  SECTION("hidden 1, input 1, T = 1, batch 1, with h0") {
    tg::GRU<double> m(1, 1, tg::GRUOptions(), gen);
    CHECK_GRADCHECK_MODULE(m, randn({1, 1, 1}, 1), randn({1, 1, 1}, 2, 0.5), std::nullopt, run_gru);
  }
  SECTION("two bidirectional layers, batch 1, with h0") {
    tg::GRU<double> m(2, 2, tg::GRUOptions().num_layers(2).bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({3, 1, 2}, 4), randn({4, 1, 2}, 5, 0.5), std::nullopt, run_gru);
  }
  SECTION("batch_first, no bias, two layers, no h0") {
    tg::GRU<double> m(3, 2, tg::GRUOptions().num_layers(2).bias(false).batch_first(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({2, 3, 3}, 7), std::nullopt, std::nullopt, run_gru);
  }
  SECTION("unbatched, bidirectional, with h0") {
    tg::GRU<double> m(2, 3, tg::GRUOptions().bidirectional(true), gen);
    CHECK_GRADCHECK_MODULE(m, randn({4, 2}, 8), randn({2, 3}, 9, 0.5), std::nullopt, run_gru);
  }
  SECTION("GRUCell: batch 1, hidden 1, input 1; unbatched; no bias") {
    tg::GRUCell<double> a(1, 1, tg::GRUCellOptions(), gen);
    CHECK_GRADCHECK_MODULE(a, randn({1, 1}, 10), randn({1, 1}, 11), std::nullopt, run_cell);
    tg::GRUCell<double> b(3, 2, tg::GRUCellOptions().bias(false), gen);
    CHECK_GRADCHECK_MODULE(b, randn({3}, 13), randn({2}, 14), std::nullopt, run_cell);
    CHECK_GRADCHECK_MODULE(b, randn({2, 3}, 16), std::nullopt, std::nullopt, run_cell);
  }
}

TEST_CASE("GRU uses PyTorch's parameter names, shapes, order and init range, and prints as PyTorch") {
  tg::Generator gen(7);
  tg::GRU<float> m(3, 16, tg::GRUOptions().num_layers(2).bidirectional(true), gen);
  std::vector<std::string> names;
  for (auto& [name, p] : m.named_parameters()) {
    names.push_back(name);
    for (float v : p->value) CHECK(std::abs(v) <= 0.25f);
  }
  CHECK(names.size() == 16);
  CHECK(names[4] == "weight_ih_l0_reverse");
  CHECK(names[15] == "bias_hh_l1_reverse");
  const auto sd = m.state_dict();
  CHECK(sd.at("weight_ih_l0").shape() == tg::Shape{48, 3});
  CHECK(sd.at("weight_ih_l1_reverse").shape() == tg::Shape{48, 32});
  CHECK(sd.at("weight_hh_l1").shape() == tg::Shape{48, 16});
  CHECK(sd.at("bias_ih_l1").shape() == tg::Shape{48});
  CHECK(m.to_string() == "GRU(3, 16, num_layers=2, bidirectional=True)\n");
  CHECK(tg::GRU<float>(3, 4, tg::GRUOptions().dropout(0.25).batch_first(true)).to_string() ==
        "GRU(3, 4, batch_first=True, dropout=0.25)\n");
  CHECK(tg::GRUCell<float>(3, 4).to_string() == "GRUCell(3, 4)\n");
  CHECK(tg::GRUCell<float>(5, 2).state_dict().at("weight_hh").shape() == tg::Shape{6, 2});
}

TEST_CASE(
    "GRU shapes follow torch.nn.GRU; dropout only between layers in training; float agrees with double") {
  tg::Generator gen(8);
  tg::GRU<double> m(3, 4, tg::GRUOptions().num_layers(2).batch_first(true).bidirectional(true).dropout(0.5),
                    gen);
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 5, 3}, 1));
  m.eval();
  const auto r = m.run(t, x);
  CHECK(r.output.shape() == tg::Shape{2, 5, 8});
  CHECK(r.h_n.shape() == tg::Shape{4, 2, 4});
  for (std::size_t n = 0; n < 2; ++n) {
    for (std::size_t j = 0; j < 4; ++j) {
      CHECK(r.h_n.value()(2, n, j) == r.output.value()(n, 4, j));
      CHECK(r.h_n.value()(3, n, j) == r.output.value()(n, 0, 4 + j));
    }
  }
  CHECK((m.run(t, x).output.value() == r.output.value()));  // eval: no dropout, deterministic
  m.train();
  CHECK(max_abs_diff(m.run(t, x).output.value(), r.output.value()) > 1e-3);

  tg::GRU<float> f(3, 4, tg::GRUOptions().num_layers(2).batch_first(true).bidirectional(true));
  tg::StateDict<float> sf;
  for (const auto& [k, v] : m.state_dict()) sf[k] = xt::xarray<float>(xt::cast<float>(v));
  f.load_state_dict(sf);
  tg::Tape<float> tf;
  const auto yf = f.forward(tf, tf.input(xt::xarray<float>(xt::cast<float>(x.value()))));
  CHECK(max_abs_diff(yf.value(), r.output.value()) < 1e-6);
}

TEST_CASE(
    "GRU input of rank 1 or 4, of the wrong input_size, or an h0 of the wrong shape is a ShapeError naming them") {
  tg::GRU<double> m(3, 4, tg::GRUOptions().num_layers(2));
  tg::Tape<double> t;
  const auto x = t.input(randn({5, 2, 3}, 0));
  const auto rank4 = t.input(randn({5, 2, 3, 1}, 1)), rank1 = t.input(randn({3}, 2)),
             wide = t.input(randn({5, 2, 4}, 3));
  const auto h0_bad = t.input(randn({1, 2, 4}, 4));
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(m.run(t, rank4), Catch::Contains("GRU") && Catch::Contains("(5, 2, 3, 1)"));
  CHECK_THROWS_AS(m.run(t, rank1), tg::ShapeError);
  CHECK_THROWS_WITH(m.run(t, wide), Catch::Contains("Expected 3, got 4"));
  CHECK_THROWS_WITH(m.run(t, x, h0_bad),
                    Catch::Contains("expected hidden size (2, 2, 4)") && Catch::Contains("(1, 2, 4)"));
  CHECK(t.size() == n);
}

TEST_CASE("GRU on an empty sequence is a ValueError; hidden_size 0, num_layers 0 or a bad dropout too") {
  tg::GRU<double> m(3, 4);
  tg::Tape<double> t;
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 3}));
  const std::size_t n = t.size();
  CHECK_THROWS_AS(m.run(t, empty), tg::ValueError);
  CHECK(t.size() == n);
  CHECK_THROWS_WITH(tg::GRU<double>(3, 0), Catch::Contains("hidden_size"));
  CHECK_THROWS_WITH(tg::GRU<double>(3, 4, tg::GRUOptions().num_layers(0)), Catch::Contains("num_layers"));
  CHECK_THROWS_WITH(tg::GRU<double>(3, 4, tg::GRUOptions().dropout(2.0)), Catch::Contains("dropout"));
  CHECK_THROWS_AS(tg::GRU<double>(3, 4, tg::GRUOptions().dropout(-1e-9)), tg::ValueError);
  CHECK_THROWS_AS(tg::GRUCell<double>(3, 0), tg::ValueError);
}

TEST_CASE(
    "GRUCell input of rank 3, the wrong input_size, or an h of the wrong shape is a ShapeError naming them") {
  tg::GRUCell<double> m(3, 4);
  tg::Tape<double> t;
  const auto x = t.input(randn({2, 3}, 1)), x3 = t.input(randn({1, 2, 3}, 2)), wide = t.input(randn({5}, 3));
  const auto h_bad = t.input(randn({2, 5}, 4)), ux = t.input(randn({3}, 5)),
             h_batched = t.input(randn({1, 4}, 6));
  const std::size_t n = t.size();
  CHECK_THROWS_WITH(m.run(t, x3), Catch::Contains("(1, 2, 3)"));
  CHECK_THROWS_WITH(m.run(t, wide), Catch::Contains("got 5 expected 3"));
  CHECK_THROWS_WITH(m.run(t, x, h_bad), Catch::Contains("(2, 4)") && Catch::Contains("(2, 5)"));
  CHECK_THROWS_WITH(m.run(t, ux, h_batched),
                    Catch::Contains("expected h of shape (4)") && Catch::Contains("(1, 4)"));
  CHECK(t.size() == n);
}

TEST_CASE("in batch-invariant mode a GRU sequence's states do not depend on the rest of the batch") {
  tg::Generator gen(11);
  tg::GRU<float> m(37, 67, tg::GRUOptions().bidirectional(true), gen);
  const auto xv = randn<float>({5, 9, 37}, 12);
  tg::BatchInvariantGuard guard;
  tg::Tape<float> t;
  const auto all = m.forward(t, t.input(xv)).value();
  for (const std::size_t n : {0, 4, 8}) {
    xt::xarray<float> one = xt::xarray<float>::from_shape({5, 1, 37});
    for (std::size_t s = 0; s < 5; ++s) {
      for (std::size_t i = 0; i < 37; ++i) one(s, 0, i) = xv(s, n, i);
    }
    const auto y = m.forward(t, t.input(one)).value();
    std::size_t differing = 0;
    for (std::size_t s = 0; s < 5; ++s) {
      for (std::size_t j = 0; j < 134; ++j) differing += y(s, 0, j) != all(s, n, j);
    }
    CHECK(differing == 0);
  }
}
