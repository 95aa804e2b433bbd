// Chapter 5: checking gradients.
//
// A backward pass is code, and code has bugs. gradcheck compares the tape's analytic Jacobian
// (one backward per output element) with central finite differences
//   dy_j/dx_p ~ (y_j(x + eps e_p) - y_j(x - eps e_p)) / (2 eps)
// entry by entry, in double precision, and passes when |analytic - numeric| <= atol + rtol |numeric|
// everywhere (PyTorch's eps 1e-6, atol 1e-5, rtol 1e-3). The Taylor test is a second opinion:
// the remainder phi(x + h d) - phi(x) - h <grad phi, d> shrinks like h^2 only when the gradient
// is right (order ~2), and like h (order ~1) when it is wrong.
//
// We check (1) a composite function of our own, (2) a whole module, parameters included, and
// (3) a custom op whose backward is deliberately wrong, which both checks must catch.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;
using Vars = std::vector<tg::Var<double>>;

namespace {

void print_report(const char* title, const tg::GradcheckResult& g, const tg::TaylorResult& t) {
  std::printf("%s\n", title);
  std::printf("  gradcheck: %s, %zu Jacobian entries compared\n", g.ok ? "passed" : "FAILED", g.checked);
  std::printf("    %s\n", g.message.c_str());
  std::printf("  Taylor test: %s, convergence orders", t.ok ? "passed" : "FAILED");
  for (double o : t.orders) std::printf(" %.2f", o);
  std::printf("\n    %s\n\n", t.message.c_str());
}

// A custom op recorded with tape.record: forward y = x^2, but the backward claims dy/dx = x
// (the factor 2 is missing), the kind of slip gradcheck exists for.
tg::Var<double> wrong_square(const tg::Var<double>& x) {
  tg::Tape<double>& t = x.tape();
  auto r = t.record("wrong_square", {x});
  r.out(t.shape(x)) = t.value(x) * t.value(x);
  return r.finish([](tg::BackwardCtx<double>& c) { c.accumulate(0, c.grad() * c.input(0)); });
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  bool fast = false;
  CLI::App app{"Chapter 5: gradcheck a function, a module, and a deliberately wrong backward"};
  app.option_defaults()->always_capture_default();
  app.add_option("--seed", seed, "seed of the inputs and the module's initialization");
  app.add_flag("--fast", fast, "fast mode: compare v^T J u for random u, v instead of every entry");
  CLI11_PARSE(app, argc, argv);

  tg::GradcheckOptions options;
  options.fast_mode = fast;
  tg::Generator gen(seed);

  // (1) A composite function of three inputs. Its output stays a (3, 4) array (no sum()), so
  // every output element gets its own row of the Jacobian.
  const tg::GradcheckFn composite = [](tg::Tape<double>&, const Vars& v) {
    auto h = tg::tanh(tg::matmul(v[0], v[1]) + v[2]);  // (3, 4)
    return h * tg::exp(-(h * h)) + tg::log(tg::sigmoid(h) + 1.0);
  };
  const std::vector<xt::xarray<double>> inputs = {tg::normal_array<double>({3, 5}, 0, 1, gen),
                                                  tg::normal_array<double>({5, 4}, 0, 0.5, gen),
                                                  tg::normal_array<double>({4}, 0, 0.1, gen)};
  std::printf("(1) f(x, W, b) = h exp(-h^2) + log(sigmoid(h) + 1),  h = tanh(x W + b)\n");
  std::printf("    x (3, 5), W (5, 4), b (4) broadcast over rows\n");
  const auto g1 = tg::gradcheck(composite, inputs, options);
  const auto t1 = tg::taylor_test(composite, inputs);
  print_report("", g1, t1);

  // (2) A module: its input and every parameter are checked.
  tg::Sequential<double> net;
  net.emplace_back<tg::Linear<double>>(4, 6, tg::LinearOptions(), gen);
  net.emplace_back<tg::LayerNorm<double>>(tg::Shape{6});
  net.emplace_back<tg::Tanh<double>>();
  net.emplace_back<tg::Linear<double>>(6, 3, tg::LinearOptions(), gen);
  // LayerNorm starts as weight 1, bias 0; random values check those gradients more sharply.
  for (auto& [name, p] : net.named_parameters()) p->value = tg::normal_array<double>(p->shape(), 0, 0.5, gen);
  const xt::xarray<double> batch = tg::normal_array<double>({2, 4}, 0, 1, gen);
  std::printf("(2) gradcheck_module on\n%s    input (2, 4), %zu parameters\n", net.to_string().c_str(),
              net.num_parameters());
  const auto g2 = tg::gradcheck_module(net, batch, options);
  std::printf("  gradcheck_module: %s, %zu Jacobian entries compared\n    %s\n\n",
              g2.ok ? "passed" : "FAILED", g2.checked, g2.message.c_str());

  // (3) The wrong backward.
  const tg::GradcheckFn wrong = [](tg::Tape<double>&, const Vars& v) { return wrong_square(v[0]); };
  const std::vector<xt::xarray<double>> xs = {xt::xarray<double>{1.0, 2.0, 3.0}};
  std::printf("(3) a custom op y = x^2 whose backward returns x instead of 2x, at x = (1, 2, 3)\n");
  const auto g3 = tg::gradcheck(wrong, xs, options);
  const auto t3 = tg::taylor_test(wrong, xs);
  print_report("", g3, t3);

  const bool as_expected = g1.ok && t1.ok && g2.ok && !g3.ok && !t3.ok;
  std::printf("%s\n", as_expected ? "as expected: the correct gradients pass, the wrong backward is caught"
                                  : "UNEXPECTED: a correct gradient failed or the wrong one passed");
  return as_expected ? 0 : 1;
}
