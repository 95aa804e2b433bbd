// Chapter 2: LayerNorm, step by step.
//
// LayerNorm normalizes each example (row) on its own:
//   mu = mean(x),  var = mean((x - mu)^2)   (the biased variance, unbiased=false)
//   xhat = (x - mu) / sqrt(var + eps),      y = xhat * weight + bias   (weight 1, bias 0 here)
// We compute it from primitive ops (mean, var, sub, sqrt, div), then with the LayerNorm module
// (one fused op), and check that they agree; then the same for the gradients, with a random
// upstream gradient g (with sum() as the upstream the input gradient of a normalization is
// exactly zero, which would check nothing). The fused backward is the closed form
//   dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
// which we also evaluate by hand.
#include <cmath>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

namespace {

void print_matrix(const char* name, const xt::xarray<double>& a) {
  std::printf("%s =\n", name);
  const std::size_t rows = a.dimension() == 2 ? a.shape()[0] : 1;
  const std::size_t cols = a.size() / rows;
  for (std::size_t i = 0; i < rows; ++i) {
    std::printf("  [");
    for (std::size_t j = 0; j < cols; ++j) std::printf("%s%9.5f", j ? ", " : "", a.data()[i * cols + j]);
    std::printf("]\n");
  }
}

double max_abs_diff(const xt::xarray<double>& a, const xt::xarray<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  double eps = 1e-5;
  CLI::App app{"Chapter 2: LayerNorm by hand, with primitive ops, and with the LayerNorm module"};
  app.option_defaults()->always_capture_default();
  app.add_option("--seed", seed, "seed of the random upstream gradient");
  app.add_option("--eps", eps, "the epsilon added to the variance")->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);

  const xt::xarray<double> data = {{0.5, -1.2, 3.3, 0.8, -0.5}, {2.0, -0.7, 1.2, -3.5, 0.6}};
  std::printf("Two examples of 5 features each; LayerNorm normalizes each row separately.\n\n");
  print_matrix("x", data);

  // ---- 1. with primitive ops, on one tape ----
  tg::Tape<double> t1;
  auto x1 = t1.input(data, true);
  auto mu = tg::mean(x1, {1}, /*keepdims=*/true);
  auto var = tg::var(x1, {1}, /*unbiased=*/false, /*keepdims=*/true);
  auto centered = x1 - mu;
  auto std_dev = tg::sqrt(var + eps);
  auto y1 = centered / std_dev;
  std::printf("\n1. Step by step with primitive ops (eps = %g)\n", eps);
  std::printf("   row means     mu  = (%.4f, %.4f)\n", mu.value()(0, 0), mu.value()(1, 0));
  std::printf("   row variances var = (%.4f, %.4f)   (biased: divided by 5, not 4)\n", var.value()(0, 0),
              var.value()(1, 0));
  std::printf("   e.g. row 0: deviations (%.2f, %.2f, %.2f, %.2f, %.2f), squares sum to %.4f, / 5 = %.4f\n",
              centered.value()(0, 0), centered.value()(0, 1), centered.value()(0, 2), centered.value()(0, 3),
              centered.value()(0, 4), 5 * var.value()(0, 0), var.value()(0, 0));
  print_matrix("   xhat = (x - mu) / sqrt(var + eps)", y1.value());
  std::printf("   the tape holds %zu nodes:\n%s", t1.size(), t1.describe().c_str());

  // ---- 2. with the LayerNorm module: one fused node ----
  tg::LayerNorm<double> ln(tg::Shape{5}, tg::LayerNormOptions().eps(eps));
  tg::Tape<double> t2;
  auto x2 = t2.input(data, true);
  auto y2 = ln.forward(t2, x2);
  std::printf(
      "\n2. The LayerNorm module (weight = 1, bias = 0 at init): %zu nodes, the norm fused into one\n",
      t2.size());
  print_matrix("   LayerNorm(x)", y2.value());
  const double forward_diff = max_abs_diff(y1.value(), y2.value());
  std::printf("   max |primitive ops - LayerNorm| = %.2e\n", forward_diff);

  // ---- 3. gradients through both, for a random upstream gradient g ----
  tg::Generator gen(seed);
  const xt::xarray<double> g = tg::normal_array<double>({2, 5}, 0, 1, gen);
  t1.backward(y1, g);
  t2.backward(y2, g);
  std::printf("\n3. Backward with a random upstream gradient (seed %llu)\n",
              static_cast<unsigned long long>(seed));
  print_matrix("   g = dL/dy", g);
  print_matrix("   dL/dx through the primitive ops", x1.grad());
  print_matrix("   dL/dx through LayerNorm", x2.grad());

  // The closed form, by hand.
  xt::xarray<double> by_hand = xt::zeros<double>({2, 5});
  for (std::size_t i = 0; i < 2; ++i) {
    double mean_g = 0, mean_gx = 0;
    for (std::size_t j = 0; j < 5; ++j) {
      mean_g += g(i, j) / 5;
      mean_gx += g(i, j) * y1.value()(i, j) / 5;
    }
    const double s = std_dev.value()(i, 0);
    for (std::size_t j = 0; j < 5; ++j) by_hand(i, j) = (g(i, j) - mean_g - y1.value()(i, j) * mean_gx) / s;
  }
  print_matrix("   dL/dx by the closed form", by_hand);
  const double grad_diff = max_abs_diff(x1.grad(), x2.grad());
  const double hand_diff = max_abs_diff(x2.grad(), by_hand);
  std::printf("   max |primitive ops - LayerNorm| = %.2e,  max |LayerNorm - closed form| = %.2e\n", grad_diff,
              hand_diff);
  double row_sum = 0;
  for (std::size_t j = 0; j < 5; ++j) row_sum += x2.grad()(0, j);
  std::printf("   each row of dL/dx sums to 0 (row 0: %.1e): shifting a row does not change its output\n",
              row_sum);
  // The affine parameters' gradients: dL/dweight = sum over rows of g * xhat, dL/dbias = sum of g.
  print_matrix("   dL/dweight = sum_rows(g * xhat)", ln.weight->grad());
  print_matrix("   dL/dbias   = sum_rows(g)", ln.bias->grad());

  const bool ok = forward_diff < 1e-12 && grad_diff < 1e-12 && hand_diff < 1e-12;
  std::printf("\n%s\n", ok ? "all three agree to 1e-12" : "MISMATCH (more than 1e-12)");
  return ok ? 0 : 1;
}
