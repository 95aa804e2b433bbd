#pragma once
// Replaying a case of tests/fixtures/lstm.json (gen_lstm.py, PyTorch 1.13, double) on a
// tapegrad module, every case of a module at once, and the fused layer ops against their
// composition: test_lstm.cpp, test_gru.cpp, test_rnn.cpp.
#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support.hpp"

namespace rnnfx {

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::to_array;

using Named = std::vector<std::pair<std::string, tg::Var<double>>>;

// The cases of lstm.json whose "module" is `module`.
inline std::vector<nlohmann::json> cases_of(const std::string& module) {
  static const nlohmann::json fx = tgtest::load_fixture("lstm.json");
  std::vector<nlohmann::json> out;
  for (const auto& c : fx.at("cases")) {
    if (c.at("module") == module) out.push_back(c);
  }
  return out;
}

// Loads the case's state_dict into m (eval mode when the case says training = false), runs
// run(m, tape, x, h0, c0) -> the named results (h0, c0 undefined when the case has none),
// backpropagates the loss Σ <up_name, result>, and compares every result and the gradients of
// x, h0, c0 and every parameter with PyTorch's, each to `tol`. Returns the largest difference.
template <class M, class Run>
double check_case(M& m, const nlohmann::json& c, Run&& run, double tol = 1e-12) {
  tg::StateDict<double> state;
  for (const auto& [k, v] : c.at("state").items()) state[k] = to_array(v);
  m.load_state_dict(state);
  m.zero_grad();
  m.train(c.value("training", true));
  tg::Tape<double> t;
  const auto leaf = [&](const char* name) {
    return c.contains(name) ? t.input(to_array(c.at(name)), true) : tg::Var<double>();
  };
  const auto x = leaf("x"), h0 = leaf("h0"), c0 = leaf("c0");
  const Named results = run(m, t, x, h0, c0);
  double worst = 0;
  const auto compare = [&](const std::string& what, const xt::xarray<double>& got,
                           const nlohmann::json& want) {
    const double d = max_abs_diff(got, to_array(want));
    INFO(what << ": max abs difference " << d);
    CHECK(d < tol);
    worst = std::max(worst, d);
  };
  tg::Var<double> loss;
  for (const auto& [name, v] : results) {
    compare(name, v.value(), c.at(name));
    const auto term = tg::sum(tg::mul(v, t.constant(to_array(c.at("up_" + name)))));
    loss = loss.defined() ? loss + term : term;
  }
  t.backward(loss);
  compare("grad x", x.grad(), c.at("grad_x"));
  if (h0.defined()) compare("grad h0", h0.grad(), c.at("grad_h0"));
  if (c0.defined()) compare("grad c0", c0.grad(), c.at("grad_c0"));
  const auto params = m.named_parameters();
  CHECK(params.size() == c.at("grads").size());
  for (const auto& [name, p] : params) compare("grad " + name, p->grad(), c.at("grads").at(name));
  return worst;
}

// The module options a fixture case names: bias, and (for the stacked modules) num_layers,
// batch_first, bidirectional and dropout, (for RNN and RNNCell) nonlinearity, each when the
// case has it (rnn.json's cases have no bidirectional and dropout: the defaults).
template <class Options>
Options options_of(const nlohmann::json& c) {
  Options o;
  o.bias(c.at("bias").get<bool>());
  if constexpr (std::is_base_of_v<tg::RecurrentOptions<Options>, Options>) {
    o.num_layers(c.at("num_layers").get<std::size_t>()).batch_first(c.at("batch_first").get<bool>());
    if (c.contains("bidirectional")) o.bidirectional(c.at("bidirectional").get<bool>());
    if (c.contains("dropout")) o.dropout(c.at("dropout").get<double>());
  }
  if constexpr (std::is_base_of_v<tg::NonlinearityOption<Options>, Options>) {
    o.nonlinearity(c.at("nonlinearity").get<std::string>());
  }
  return o;
}

// "num_layers 2, bias true, ..., x [5,3,4], h0 given" for a case's INFO.
inline std::string describe(const nlohmann::json& c) {
  std::string s;
  for (const char* k : {"num_layers", "nonlinearity", "bias", "batch_first", "bidirectional", "dropout"}) {
    if (c.contains(k)) s += std::string(k) + " " + c.at(k).dump() + ", ";
  }
  return s + "x " + c.at("x").at("shape").dump() + ", h0 " + (c.contains("h0") ? "given" : "none");
}

// For each of `cases`: an M (its input_size, hidden_size and options_of<Options>), and
// check(m, case) -> the case's largest difference. Checks that there are `expected` cases;
// returns the largest difference of all.
template <class M, class Options, class Check>
double for_each_case(const std::vector<nlohmann::json>& cases, int expected, Check&& check) {
  double worst = 0;
  int n = 0;
  for (const auto& c : cases) {
    INFO("case " << n++ << ": " << describe(c));
    M m(c.at("input_size").get<std::size_t>(), c.at("hidden_size").get<std::size_t>(),
        options_of<Options>(c));
    worst = std::max(worst, check(m, c));
  }
  CHECK(n == expected);
  return worst;
}

// Every case of lstm.json for `module` through check_case with run (see there); `expected`
// cases, every array within 1e-12 of PyTorch's.
template <class M, class Options, class Run>
void check_module_cases(const std::string& module, int expected, Run&& run) {
  const double worst = for_each_case<M, Options>(
      cases_of(module), expected, [&run](M& m, const nlohmann::json& c) { return check_case(m, c, run); });
  INFO("largest difference from PyTorch over every case and array: " << worst);  // -s shows it
  CHECK(worst < 1e-12);
}

// The odd shapes the fused layer ops are gradchecked on (T = 1, batch 1, hidden 1, input 1,
// reverse, without the initial state(s), without biases): states says whether h0 (and c0) are
// given.
struct OddLayerCase {
  std::size_t T, N, I, H;
  bool reverse, states, bias;
};
inline const OddLayerCase kOddLayerCases[] = {
    {1, 1, 1, 1, false, true, true},   {3, 1, 1, 1, true, true, true},  {1, 2, 3, 2, true, false, true},
    {4, 2, 1, 3, false, false, false}, {3, 3, 2, 2, true, true, false}, {2, 1, 3, 1, false, true, true}};

// A fused layer op against the same layer composed from primitive ops: layer(fused, in) -> y
// on leaves `in` holding `values`, once composed and once fused; backpropagates `up` through
// each and compares the outputs (to out_tol) and the gradients of the leaves k with used[k]
// (to grad_tol).
template <class Layer>
void check_fused_equals_composed(const std::vector<xt::xarray<double>>& values, const std::vector<bool>& used,
                                 const xt::xarray<double>& up, Layer&& layer, double out_tol,
                                 double grad_tol) {
  xt::xarray<double> out[2];
  std::vector<xt::xarray<double>> grads[2];
  for (int fused = 0; fused < 2; ++fused) {
    tg::Tape<double> t;
    std::vector<tg::Var<double>> in;
    for (const auto& a : values) in.push_back(t.input(a, true));
    const tg::Var<double> y = layer(fused == 1, in);
    out[fused] = y.value();
    t.backward(y, up);
    for (std::size_t k = 0; k < in.size(); ++k) {
      if (used[k]) grads[fused].push_back(in[k].grad());
    }
  }
  CHECK(max_abs_diff(out[0], out[1]) < out_tol);
  REQUIRE(grads[0].size() == grads[1].size());
  for (std::size_t k = 0; k < grads[0].size(); ++k) {
    INFO("gradient " << k);
    CHECK(max_abs_diff(grads[0][k], grads[1][k]) < grad_tol);
  }
}

}  // namespace rnnfx

namespace rnnfx {

// gradcheck (full mode) of a module's run(): every named result (flattened and joined) w.r.t.
// x, the given states (h0, then c0, each optional) and every parameter.
// run(m, tape, x, h0, c0) -> Named, as for check_case.
template <class M, class Run>
tg::GradcheckResult gradcheck_module(M& m, const xt::xarray<double>& x,
                                     const std::optional<xt::xarray<double>>& h0,
                                     const std::optional<xt::xarray<double>>& c0, Run&& run) {
  const auto params = m.named_parameters();
  std::vector<xt::xarray<double>> inputs = {x};
  if (h0) inputs.push_back(*h0);
  if (c0) inputs.push_back(*c0);
  const std::size_t first_param = inputs.size();
  for (auto& [name, p] : params) inputs.push_back(p->value);
  const tg::GradcheckFn f = [&](tg::Tape<double>& t, const std::vector<tg::Var<double>>& v) {
    for (std::size_t i = 0; i < params.size(); ++i) t.bind_param(*params[i].second, v[first_param + i]);
    const tg::Var<double> h = h0 ? v[1] : tg::Var<double>(), c = c0 ? v[h0 ? 2 : 1] : tg::Var<double>();
    std::vector<tg::Var<double>> flat;
    for (const auto& [name, r] : run(m, t, v[0], h, c)) flat.push_back(tg::reshape(r, {-1}));
    return tg::concat(flat, 0);
  };
  auto result = tg::gradcheck(f, inputs);
  if (result.input >= first_param) {
    result.message += " [parameter '" + params[result.input - first_param].first + "']";
  }
  return result;
}

}  // namespace rnnfx

#define CHECK_GRADCHECK_MODULE(...)                          \
  do {                                                       \
    auto gcm_result_ = rnnfx::gradcheck_module(__VA_ARGS__); \
    INFO(gcm_result_.message);                               \
    CHECK(gcm_result_.ok);                                   \
  } while (0)
