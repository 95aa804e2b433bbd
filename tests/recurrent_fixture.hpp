#pragma once
// Replaying a case of tests/fixtures/lstm.json (gen_lstm.py, PyTorch 1.13, double) on a
// tapegrad module: test_lstm.cpp, test_gru.cpp, test_rnn.cpp.
#include <optional>
#include <string>
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
