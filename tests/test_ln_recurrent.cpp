// LNLSTM and LNGRU (nn/ln_recurrent.hpp): the PyTorch composition of their equations
// (fixtures/gen_ln_recurrent.py), gradcheck, batch independence, float vs double, names, and
// the bad-input cases of the catalogue.
#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>

#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "rnn_check.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::max_abs_diff;
using tgtest::randn;
using tgtest::to_array;

namespace {

std::size_t size_of(const nlohmann::json& c, const char* key) { return c.at(key).get<std::size_t>(); }

// The largest difference from the fixtures seen per quantity, over every case of a module.
struct Diffs {
  double output = 0, h_n = 0, c_n = 0, grad_x = 0, grad_h0 = 0, grad_c0 = 0, grad_params = 0;
};

void track(double& worst, double d) { worst = std::max(worst, d); }

// Loads the case's state into m, runs it, backpropagates the case's upstream gradients and
// records every difference into `d`.
template <class M>
void replay_case(M& m, const nlohmann::json& c, Diffs& d) {
  tg::StateDict<double> state;
  for (const auto& [k, v] : c.at("state").items()) state[k] = to_array(v);
  m.load_state_dict(state);
  m.zero_grad();
  tg::Tape<double> t;
  const auto x = t.input(to_array(c.at("x")), true);
  tg::Var<double> h0, c0;
  if (c.contains("h0")) h0 = t.input(to_array(c.at("h0")), true);
  if (c.contains("c0")) c0 = t.input(to_array(c.at("c0")), true);
  tg::Var<double> output, h_n, c_n;
  if constexpr (std::is_same_v<M, tg::LNLSTM<double>>) {
    const auto r = m.run(t, x, h0, c0);
    output = r.output, h_n = r.h_n, c_n = r.c_n;
  } else {
    const auto r = m.run(t, x, h0);
    output = r.output, h_n = r.h_n;
  }
  track(d.output, max_abs_diff(output.value(), to_array(c.at("output"))));
  track(d.h_n, max_abs_diff(h_n.value(), to_array(c.at("h_n"))));
  auto loss = tg::sum(tg::mul(output, t.constant(to_array(c.at("up_output"))))) +
              tg::sum(tg::mul(h_n, t.constant(to_array(c.at("up_h_n")))));
  if (c_n.defined()) {
    track(d.c_n, max_abs_diff(c_n.value(), to_array(c.at("c_n"))));
    loss = loss + tg::sum(tg::mul(c_n, t.constant(to_array(c.at("up_c_n")))));
  }
  t.backward(loss);
  track(d.grad_x, max_abs_diff(x.grad(), to_array(c.at("grad_x"))));
  if (h0.defined()) track(d.grad_h0, max_abs_diff(h0.grad(), to_array(c.at("grad_h0"))));
  if (c0.defined()) track(d.grad_c0, max_abs_diff(c0.grad(), to_array(c.at("grad_c0"))));
  const auto params = m.named_parameters();
  CHECK(params.size() == c.at("grads").size());
  for (const auto& [name, p] : params) {
    INFO("parameter " << name);
    track(d.grad_params, max_abs_diff(p->grad(), to_array(c.at("grads").at(name))));
  }
}

void check_diffs(const Diffs& d, double tol) {
  CHECK(d.output < tol);
  CHECK(d.h_n < tol);
  CHECK(d.c_n < tol);
  CHECK(d.grad_x < tol);
  CHECK(d.grad_h0 < tol);
  CHECK(d.grad_c0 < tol);
  CHECK(d.grad_params < tol);
}

// gradcheck (full mode) of an LNLSTM's run(): output, h_n and c_n (flattened and joined)
// w.r.t. x, h0 and c0 (when given) and every parameter.
tg::GradcheckResult gradcheck_lnlstm(tg::LNLSTM<double>& m, const xt::xarray<double>& x,
                                     const std::optional<xt::xarray<double>>& h0,
                                     const std::optional<xt::xarray<double>>& c0) {
  const auto params = m.named_parameters();
  std::vector<xt::xarray<double>> inputs = {x};
  if (h0) inputs.push_back(*h0);
  if (c0) inputs.push_back(*c0);
  const std::size_t first_param = inputs.size();
  for (auto& [name, p] : params) inputs.push_back(p->value);
  const tg::GradcheckFn f = [&](tg::Tape<double>& t, const std::vector<tg::Var<double>>& v) {
    for (std::size_t i = 0; i < params.size(); ++i) t.bind_param(*params[i].second, v[first_param + i]);
    const auto r = m.run(t, v[0], h0 ? v[1] : tg::Var<double>(), c0 ? v[h0 ? 2 : 1] : tg::Var<double>());
    return tg::concat(std::vector<tg::Var<double>>{tg::reshape(r.output, {-1}), tg::reshape(r.h_n, {-1}),
                                                   tg::reshape(r.c_n, {-1})},
                      0);
  };
  auto result = tg::gradcheck(f, inputs);
  if (result.input >= first_param)
    result.message += " [parameter '" + params[result.input - first_param].first + "']";
  return result;
}

#define CHECK_GRADCHECK_LNLSTM(m, x, h0, c0)                   \
  do {                                                         \
    auto gcl_result_ = gradcheck_lnlstm((m), (x), (h0), (c0)); \
    INFO(gcl_result_.message);                                 \
    CHECK(gcl_result_.ok);                                     \
  } while (0)

template <class M>
void randomize(M& m, std::uint64_t seed) {
  for (auto* p : m.parameters()) p->value = randn(p->shape(), seed + p->size(), 0.7);
}

// x (T, N, I) -> the example n alone, (T, 1, I); a state (1, N, H) -> (1, 1, H).
xt::xarray<double> example(const xt::xarray<double>& v, std::size_t n) {
  xt::xarray<double> one = xt::xarray<double>::from_shape({v.shape()[0], 1, v.shape()[2]});
  for (std::size_t s = 0; s < v.shape()[0]; ++s) {
    for (std::size_t j = 0; j < v.shape()[2]; ++j) one(s, 0, j) = v(s, n, j);
  }
  return one;
}

// How many entries of `alone` (T, 1, H) differ in any bit from example n of `all` (T, N, H).
std::size_t differing(const xt::xarray<double>& all, const xt::xarray<double>& alone, std::size_t n) {
  std::size_t count = 0;
  for (std::size_t s = 0; s < all.shape()[0]; ++s) {
    for (std::size_t j = 0; j < all.shape()[2]; ++j) count += !(alone(s, 0, j) == all(s, n, j));
  }
  return count;
}

template <class F, class D>
xt::xarray<F> cast_to(const xt::xarray<D>& v) {
  return xt::xarray<F>(xt::cast<F>(v));
}

}  // namespace

TEST_CASE("LNLSTM matches the PyTorch composition of its equations: output, h_n, c_n, every gradient") {
  const auto fx = tgtest::load_fixture("ln_recurrent.json");
  Diffs d;
  int n = 0;
  for (const auto& c : fx.at("cases")) {
    if (c.at("module") != "LNLSTM") continue;
    INFO("case " << n++ << ": x " << c.at("x").at("shape") << ", h0 " << c.contains("h0") << ", c0 "
                 << c.contains("c0"));
    tg::LNLSTM<double> m(
        size_of(c, "input_size"), size_of(c, "hidden_size"),
        tg::LNLSTMOptions().eps(c.at("eps").get<double>()).batch_first(c.at("batch_first").get<bool>()));
    replay_case(m, c, d);
  }
  CHECK(n == 6);
  check_diffs(d, 1e-12);
}

TEST_CASE("LNGRU matches the PyTorch composition of its equations: output, h_n, every gradient") {
  const auto fx = tgtest::load_fixture("ln_recurrent.json");
  Diffs d;
  int n = 0;
  for (const auto& c : fx.at("cases")) {
    if (c.at("module") != "LNGRU") continue;
    INFO("case " << n++ << ": x " << c.at("x").at("shape") << ", h0 " << c.contains("h0"));
    tg::LNGRU<double> m(
        size_of(c, "input_size"), size_of(c, "hidden_size"),
        tg::LNGRUOptions().eps(c.at("eps").get<double>()).batch_first(c.at("batch_first").get<bool>()));
    replay_case(m, c, d);
  }
  CHECK(n == 5);
  check_diffs(d, 1e-12);
}

TEST_CASE("LNLSTM gradients pass gradcheck w.r.t. x, h0, c0 and all parameters on odd shapes") {
  tg::Generator gen(5);
  SECTION("input 1, hidden 2, T = 1, N = 1, with h0 and c0") {
    tg::LNLSTM<double> m(1, 2, tg::LNLSTMOptions(), gen);
    randomize(m, 10);
    CHECK_GRADCHECK_LNLSTM(m, randn({1, 1, 1}, 1), std::optional(randn({1, 1, 2}, 2)),
                           std::optional(randn({1, 1, 2}, 3)));
  }
  SECTION("hidden 1: LN_c of one value is its shift, a path whose derivative is exactly 0") {
    tg::LNLSTM<double> m(2, 1, tg::LNLSTMOptions(), gen);
    randomize(m, 20);
    CHECK_GRADCHECK_LNLSTM(m, randn({3, 2, 2}, 4), std::nullopt, std::optional(randn({1, 2, 1}, 5)));
  }
  SECTION("T = 4, N = 3, batch_first, hidden 3, h0 only") {
    tg::LNLSTM<double> m(3, 3, tg::LNLSTMOptions().batch_first(true), gen);
    randomize(m, 30);
    CHECK_GRADCHECK_LNLSTM(m, randn({3, 4, 3}, 6), std::optional(randn({1, 3, 3}, 7)), std::nullopt);
  }
  SECTION("unbatched, T = 2, hidden 2, eps 1e-3") {
    tg::LNLSTM<double> m(2, 2, tg::LNLSTMOptions().eps(1e-3), gen);
    randomize(m, 40);
    CHECK_GRADCHECK_LNLSTM(m, randn({2, 2}, 8), std::optional(randn({1, 2}, 9)),
                           std::optional(randn({1, 2}, 10)));
  }
}

TEST_CASE("LNGRU gradients pass gradcheck w.r.t. x, h0 and all parameters on odd shapes") {
  tg::Generator gen(6);
  SECTION("input 1, hidden 2, T = 1, N = 1, with h0") {
    tg::LNGRU<double> m(1, 2, tg::LNGRUOptions(), gen);
    randomize(m, 50);
    CHECK_GRADCHECK_RECURRENT(m, randn({1, 1, 1}, 1), std::optional(randn({1, 1, 2}, 2)));
  }
  SECTION("hidden 1 (each LN still sees 3 features), T = 3, N = 2, no h0") {
    tg::LNGRU<double> m(2, 1, tg::LNGRUOptions(), gen);
    randomize(m, 60);
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 2, 2}, 3), std::nullopt);
  }
  SECTION("T = 4, N = 3, batch_first, hidden 3") {
    tg::LNGRU<double> m(3, 3, tg::LNGRUOptions().batch_first(true), gen);
    randomize(m, 70);
    CHECK_GRADCHECK_RECURRENT(m, randn({3, 4, 3}, 4), std::optional(randn({1, 3, 3}, 5)));
  }
  SECTION("unbatched, T = 2, hidden 2") {
    tg::LNGRU<double> m(2, 2, tg::LNGRUOptions(), gen);
    randomize(m, 80);
    CHECK_GRADCHECK_RECURRENT(m, randn({2, 2}, 6), std::optional(randn({1, 2}, 7)));
  }
}

TEST_CASE("an LNLSTM or LNGRU example's output is bitwise independent of the rest of its batch") {
  // LayerNorm's statistics are each example's own. The GEMMs are made batch-invariant
  // (core/batch_invariant.hpp): BLAS may round a row differently in a batch of 3 and of 1.
  tg::BatchInvariantGuard guard;
  tg::Generator gen(7);
  tg::LNLSTM<double> lstm(5, 6, tg::LNLSTMOptions(), gen);
  tg::LNGRU<double> gru(5, 6, tg::LNGRUOptions(), gen);
  randomize(lstm, 90);
  randomize(gru, 100);
  const auto x = randn({4, 3, 5}, 11);
  const auto h0 = randn({1, 3, 6}, 12, 0.5);
  const auto c0 = randn({1, 3, 6}, 13, 0.5);
  tg::Tape<double> t;
  const auto all = lstm.run(t, t.input(x), t.input(h0), t.input(c0));
  const auto all_gru = gru.run(t, t.input(x), t.input(h0));
  for (std::size_t n = 0; n < 3; ++n) {
    INFO("example " << n);
    const auto one = lstm.run(t, t.input(example(x, n)), t.input(example(h0, n)), t.input(example(c0, n)));
    CHECK(differing(all.output.value(), one.output.value(), n) == 0);
    CHECK(differing(all.c_n.value(), one.c_n.value(), n) == 0);
    const auto one_gru = gru.run(t, t.input(example(x, n)), t.input(example(h0, n)));
    CHECK(differing(all_gru.output.value(), one_gru.output.value(), n) == 0);
  }
}

TEST_CASE("float LNLSTM and LNGRU agree with the double ones to 5e-6 (measured: 5e-7)") {
  tg::Generator gen(8);
  tg::LNLSTM<double> lstm_d(4, 16, tg::LNLSTMOptions(), gen);
  tg::LNGRU<double> gru_d(4, 16, tg::LNGRUOptions(), gen);
  randomize(lstm_d, 110);
  randomize(gru_d, 120);
  tg::LNLSTM<float> lstm_f(4, 16);
  tg::LNGRU<float> gru_f(4, 16);
  tg::StateDict<float> s;
  for (const auto& [k, v] : lstm_d.state_dict()) s[k] = cast_to<float>(v);
  lstm_f.load_state_dict(s);
  s.clear();
  for (const auto& [k, v] : gru_d.state_dict()) s[k] = cast_to<float>(v);
  gru_f.load_state_dict(s);
  const auto x = randn({12, 3, 4}, 14);
  tg::Tape<double> td;
  tg::Tape<float> tf;
  const auto ld = lstm_d.run(td, td.input(x));
  const auto lf = lstm_f.run(tf, tf.input(cast_to<float>(x)));
  CHECK(max_abs_diff(ld.output.value(), lf.output.value()) < 5e-6);
  CHECK(max_abs_diff(ld.c_n.value(), lf.c_n.value()) < 5e-6);
  const auto gd = gru_d.run(td, td.input(x));
  const auto gf = gru_f.run(tf, tf.input(cast_to<float>(x)));
  CHECK(max_abs_diff(gd.output.value(), gf.output.value()) < 5e-6);
}

TEST_CASE("LNLSTM and LNGRU use the documented parameter names, shapes and initial values") {
  tg::LNLSTM<float> lstm(3, 4);
  std::vector<std::string> names;
  for (auto& [name, p] : lstm.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight_ih", "weight_hh", "bias", "ln_x.weight", "ln_x.bias",
                                          "ln_h.weight", "ln_h.bias", "ln_c.weight", "ln_c.bias"});
  const auto sd = lstm.state_dict();
  CHECK(sd.at("weight_ih").shape() == tg::Shape{16, 3});
  CHECK(sd.at("weight_hh").shape() == tg::Shape{16, 4});
  CHECK(double(xt::amax(xt::abs(sd.at("weight_hh")))()) <= 0.5);  // U(-1/sqrt(4), 1/sqrt(4))
  CHECK(double(xt::amax(xt::abs(sd.at("weight_hh")))()) > 0.3);
  CHECK((sd.at("bias") == xt::zeros<float>({16})));
  CHECK((sd.at("ln_h.weight") == xt::ones<float>({16})));
  CHECK((sd.at("ln_x.bias") == xt::zeros<float>({16})));
  CHECK((sd.at("ln_c.weight") == xt::ones<float>({4})));
  CHECK(lstm.to_string() ==
        "LNLSTM(3, 4\n  (ln_x): LayerNorm((16,), eps=1e-05, elementwise_affine=True)\n"
        "  (ln_h): LayerNorm((16,), eps=1e-05, elementwise_affine=True)\n"
        "  (ln_c): LayerNorm((4,), eps=1e-05, elementwise_affine=True)\n)\n");

  tg::LNGRU<float> gru(3, 4, tg::LNGRUOptions().batch_first(true).eps(1e-3));
  names.clear();
  for (auto& [name, p] : gru.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight_ih", "weight_hh", "bias", "ln_x.weight", "ln_x.bias",
                                          "ln_h.weight", "ln_h.bias"});
  CHECK(gru.state_dict().at("weight_ih").shape() == tg::Shape{12, 3});
  CHECK(gru.extra_repr() == "3, 4, eps=0.001, batch_first=True");
}

TEST_CASE("LNLSTM and LNGRU return PyTorch's shapes for each layout; forward is run's output") {
  tg::LNLSTM<double> lstm(3, 4, tg::LNLSTMOptions().batch_first(true));
  tg::LNGRU<double> gru(3, 4);
  tg::Tape<double> t;
  const auto bf = lstm.run(t, t.input(randn({2, 5, 3}, 1)));
  CHECK(bf.output.shape() == tg::Shape{2, 5, 4});
  CHECK(bf.h_n.shape() == tg::Shape{1, 2, 4});
  CHECK(bf.c_n.shape() == tg::Shape{1, 2, 4});
  const auto un = lstm.run(t, t.input(randn({5, 3}, 2)));
  CHECK(un.output.shape() == tg::Shape{5, 4});
  CHECK(un.h_n.shape() == tg::Shape{1, 4});
  CHECK(un.c_n.shape() == tg::Shape{1, 4});
  const auto x = t.input(randn({5, 2, 3}, 3));
  const auto g = gru.run(t, x);
  CHECK(g.output.shape() == tg::Shape{5, 2, 4});
  CHECK(g.h_n.shape() == tg::Shape{1, 2, 4});
  CHECK((gru(t, x).value() == g.output.value()));
  // The last output step is h_n.
  CHECK(max_abs_diff(xt::xarray<double>(xt::view(g.output.value(), 4)),
                     xt::xarray<double>(xt::view(g.h_n.value(), 0))) == 0.0);
}

// ---- bad inputs (the catalogue's cases for nn/ln_recurrent.hpp) ----------------------------

TEST_CASE(
    "LNLSTM and LNGRU given 5 features for input_size 4, or a rank-4 input, are ShapeErrors naming both; nothing changes") {
  tg::LNLSTM<double> lstm(4, 3);
  tg::LNGRU<double> gru(4, 3);
  tg::Tape<double> t;
  const auto wide = t.input(randn({6, 2, 5}, 1));
  const auto rank4 = t.input(randn({1, 6, 2, 4}, 2));
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::ShapeError>([&] { lstm(t, wide); }, {"LNLSTM", "Expected 4, got 5", "(6, 2, 5)"});
  expect_error<tg::ShapeError>([&] { gru.run(t, wide); }, {"LNGRU", "Expected 4, got 5", "(6, 2, 5)"});
  expect_error<tg::ShapeError>([&] { lstm.run(t, rank4); },
                               {"LNLSTM", "(1, 6, 2, 4)", "(seq_len, batch, input_size)"});
  expect_error<tg::ShapeError>([&] { gru(t, rank4); }, {"LNGRU", "(1, 6, 2, 4)"});
  snap.check_unchanged();
}

TEST_CASE(
    "an LNLSTM h0 or c0 or an LNGRU h0 of the wrong shape is a ShapeError naming both shapes; nothing changes") {
  tg::LNLSTM<double> lstm(4, 3);
  tg::LNGRU<double> gru(4, 3);
  tg::Tape<double> t;
  const auto x = t.input(randn({6, 2, 4}, 1));
  const auto unbatched = t.input(randn({6, 4}, 2));
  const auto good = t.input(randn({1, 2, 3}, 3));
  const auto two_layers = t.input(randn({2, 2, 3}, 4));
  const auto batched_state = t.input(randn({1, 2, 3}, 5));
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::ShapeError>([&] { lstm.run(t, x, two_layers, good); },
                               {"LNLSTM", "(1, 2, 3)", "(2, 2, 3)", "h0"});
  expect_error<tg::ShapeError>([&] { lstm.run(t, x, good, two_layers); },
                               {"LNLSTM", "(1, 2, 3)", "(2, 2, 3)", "c0"});
  expect_error<tg::ShapeError>([&] { lstm.run(t, unbatched, {}, batched_state); },
                               {"LNLSTM", "expected c0 of shape (1, 3)", "(1, 2, 3)", "unbatched"});
  expect_error<tg::ShapeError>([&] { gru.run(t, x, two_layers); }, {"LNGRU", "(1, 2, 3)", "(2, 2, 3)", "h0"});
  snap.check_unchanged();
}

TEST_CASE("an LNLSTM c0 from another tape is a StateError naming the module; nothing changes") {
  tg::LNLSTM<double> lstm(4, 3);
  tg::Tape<double> t, other;
  const auto x = t.input(randn({6, 2, 4}, 1));
  const auto c0 = other.input(randn({1, 2, 3}, 2));
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::StateError>([&] { lstm.run(t, x, {}, c0); }, {"LNLSTM"});
  snap.check_unchanged();
}

TEST_CASE("LNLSTM and LNGRU on an empty sequence are ValueErrors naming the shape; nothing changes") {
  tg::LNLSTM<double> lstm(4, 3, tg::LNLSTMOptions().batch_first(true));
  tg::LNGRU<double> gru(4, 3);
  tg::Tape<double> t;
  const auto empty_bf = t.input(xt::xarray<double>::from_shape({2, 0, 4}));
  const auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 4}));
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::ValueError>([&] { lstm.run(t, empty_bf); }, {"LNLSTM", "sequence length", "(2, 0, 4)"});
  expect_error<tg::ValueError>([&] { gru.run(t, empty); }, {"LNGRU", "sequence length", "(0, 2, 4)"});
  snap.check_unchanged();
}

TEST_CASE(
    "LNLSTM and LNGRU with hidden_size 0, a negative or NaN eps, or overflowing sizes are ValueErrors naming them") {
  expect_error<tg::ValueError>([] { tg::LNLSTM<double>(3, 0); }, {"LNLSTM", "hidden_size", "got 0"});
  expect_error<tg::ValueError>([] { tg::LNGRU<double>(3, 0); }, {"LNGRU", "hidden_size", "got 0"});
  expect_error<tg::ValueError>([] { tg::LNLSTM<double>(3, 4, tg::LNLSTMOptions().eps(-1)); },
                               {"LNLSTM", "eps", "-1"});
  expect_error<tg::ValueError>([] { tg::LNGRU<double>(3, 4, tg::LNGRUOptions().eps(std::nan(""))); },
                               {"LNGRU", "eps", "nan"});
  expect_error<tg::ValueError>([] { tg::LNLSTM<float>(3, std::size_t(1) << 62); },
                               {"LNLSTM", "gates * hidden_size"});
  expect_error<tg::ValueError>([] { tg::LNGRU<float>(std::size_t(1) << 40, std::size_t(1) << 30); },
                               {"LNGRU", "input_size"});
  expect_error<tg::ValueError>([] { tg::LNGRU<float>(static_cast<std::size_t>(-1), 4); },
                               {"LNGRU: input_size", "-1 as a signed 64-bit integer"});
}
