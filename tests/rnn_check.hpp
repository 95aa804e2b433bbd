#pragma once
// Test helpers shared by test_rnn.cpp and test_norm_rnn.cpp: replaying a PyTorch fixture case
// on a recurrent module, and gradchecking a recurrent module w.r.t. x, h0 and its parameters.
#include <optional>

#include "support.hpp"

namespace rnntest {

namespace tg = tapegrad;
using tgtest::max_abs_diff;
using tgtest::to_array;

// Loads the case's state_dict into m, runs it on the case's x (and h0), and compares output,
// h_n, the gradients of x, h0 and every parameter for the loss <up_out, output> +
// <up_h, h_n>, and the buffers after the step, all to `tol`.
template <class M>
void check_fixture_case(M& m, const nlohmann::json& c, double tol = 1e-10) {
  tg::StateDict<double> state;
  for (const auto& [k, v] : c.at("state").items()) state[k] = to_array(v);
  m.load_state_dict(state);
  m.zero_grad();
  tg::Tape<double> t;
  const auto x = t.input(to_array(c.at("x")), true);
  tg::Var<double> h0;
  if (c.contains("h0")) h0 = t.input(to_array(c.at("h0")), true);
  const auto r = m.run(t, x, h0);
  CHECK(max_abs_diff(r.output.value(), to_array(c.at("output"))) < tol);
  CHECK(max_abs_diff(r.h_n.value(), to_array(c.at("h_n"))) < tol);
  const auto loss = tg::sum(tg::mul(r.output, t.constant(to_array(c.at("up_output"))))) +
                    tg::sum(tg::mul(r.h_n, t.constant(to_array(c.at("up_h_n")))));
  t.backward(loss);
  CHECK(max_abs_diff(x.grad(), to_array(c.at("grad_x"))) < tol);
  if (c.contains("h0")) CHECK(max_abs_diff(h0.grad(), to_array(c.at("grad_h0"))) < tol);
  const auto params = m.named_parameters();
  CHECK(params.size() == c.at("grads").size());
  for (const auto& [name, p] : params) {
    INFO("parameter " << name);
    CHECK(max_abs_diff(p->grad(), to_array(c.at("grads").at(name))) < tol);
  }
  for (const auto& [name, b] : m.named_buffers()) {
    INFO("buffer " << name);
    CHECK(max_abs_diff(*b, to_array(c.at("state_after").at(name))) < tol);
  }
}

// gradcheck (full mode) of m's run(): the output and h_n (flattened and joined) w.r.t. x, h0
// (when given) and every parameter. Buffers are restored before each forward and at the end,
// so a module in training mode is not disturbed (as gradcheck_module does).
template <class M>
tg::GradcheckResult gradcheck_recurrent(M& m, const xt::xarray<double>& x,
                                        const std::optional<xt::xarray<double>>& h0) {
  const auto params = m.named_parameters();
  std::vector<std::pair<xt::xarray<double>*, xt::xarray<double>>> saved;
  for (auto& [name, b] : m.named_buffers()) saved.emplace_back(b, *b);
  const auto restore = [&] {
    for (auto& [b, v] : saved) *b = v;
  };
  std::vector<xt::xarray<double>> inputs = {x};
  if (h0) inputs.push_back(*h0);
  const std::size_t first_param = inputs.size();
  for (auto& [name, p] : params) inputs.push_back(p->value);
  const tg::GradcheckFn f = [&](tg::Tape<double>& t, const std::vector<tg::Var<double>>& v) {
    restore();
    for (std::size_t i = 0; i < params.size(); ++i) t.bind_param(*params[i].second, v[first_param + i]);
    const auto r = m.run(t, v[0], h0 ? v[1] : tg::Var<double>());
    return tg::concat(std::vector<tg::Var<double>>{tg::reshape(r.output, {-1}), tg::reshape(r.h_n, {-1})}, 0);
  };
  auto result = tg::gradcheck(f, inputs);
  restore();
  if (result.input >= first_param) {
    result.message += " [parameter '" + params[result.input - first_param].first + "']";
  }
  return result;
}

}  // namespace rnntest

#define CHECK_GRADCHECK_RECURRENT(m, x, h0)                          \
  do {                                                               \
    auto gcr_result_ = rnntest::gradcheck_recurrent((m), (x), (h0)); \
    INFO(gcr_result_.message);                                       \
    CHECK(gcr_result_.ok);                                           \
  } while (0)
