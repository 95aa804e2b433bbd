// Chapter 1: reverse-mode autodiff on a tape, with two scalars.
//
//   f(x, y) = (x*y + exp(x)) * tanh(y)
//
// Every op appends one node to the tape, in creation order. backward(f) seeds df/df = 1 and
// walks the tape once from f down to the leaves; each node's backward adds its contribution
// into its inputs' gradients. y is used twice (in x*y and in tanh(y)), so its two
// contributions add up, exactly as the chain rule's sum over paths says.
//
// By hand (a = x*y, b = exp(x), c = a + b, d = tanh(y), f = c*d):
//   df/dx = d * (dc/dx) = tanh(y) * (y + exp(x))
//   df/dy = d * (dc/dy) + c * (dd/dy) = tanh(y) * x + (x*y + exp(x)) * (1 - tanh(y)^2)
//
//   01_scalar_autograd --x 0.5 --y -1.5 --dot tape.dot     then: dot -Tpng tape.dot -o tape.png
#include <cmath>
#include <cstdio>
#include <fstream>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

int main(int argc, char** argv) {
  double x0 = 0.5, y0 = -1.5;
  std::string dot_path = "01_tape.dot";
  CLI::App app{"Chapter 1: a few scalar ops on a tape, backward, and the derivatives by hand"};
  app.option_defaults()->always_capture_default();
  app.add_option("--x", x0, "value of x")->check(CLI::Range(-20.0, 20.0));
  app.add_option("--y", y0, "value of y")->check(CLI::Range(-20.0, 20.0));
  app.add_option("--dot", dot_path, "write the tape as Graphviz DOT to this file ('' = don't)");
  CLI11_PARSE(app, argc, argv);

  tg::Tape<double> tape;
  // 0-d arrays are scalars; requires_grad = true asks for df/dx and df/dy.
  tg::Var<double> x = tape.input(xt::xarray<double>(x0), true);
  tg::Var<double> y = tape.input(xt::xarray<double>(y0), true);
  tg::Var<double> a = x * y;
  tg::Var<double> b = tg::exp(x);
  tg::Var<double> c = a + b;
  tg::Var<double> d = tg::tanh(y);
  tg::Var<double> f = c * d;

  std::printf("f(x, y) = (x*y + exp(x)) * tanh(y)   at x = %g, y = %g\n\n", x0, y0);
  std::printf("The tape, in creation order (a topological order of the graph):\n%s\n",
              tape.describe().c_str());
  std::printf("values: a = x*y = %.6f, b = exp(x) = %.6f, c = a + b = %.6f, d = tanh(y) = %.6f\n", a.item(),
              b.item(), c.item(), d.item());
  std::printf("        f = c*d = %.10f\n\n", f.item());

  tape.backward(f);
  const double gx = x.grad()(), gy = y.grad()();
  const double t = std::tanh(y0);
  const double hand_x = t * (y0 + std::exp(x0));
  const double hand_y = t * x0 + (x0 * y0 + std::exp(x0)) * (1 - t * t);
  std::printf("%-8s %22s %22s %12s\n", "", "backward (tape)", "by hand", "difference");
  std::printf("%-8s %22.15f %22.15f %12.2e\n", "df/dx", gx, hand_x, std::abs(gx - hand_x));
  std::printf("%-8s %22.15f %22.15f %12.2e\n", "df/dy", gy, hand_y, std::abs(gy - hand_y));
  std::printf("\ndf/dy is the sum of two paths: through x*y: %.6f, through tanh(y): %.6f\n", t * x0,
              (x0 * y0 + std::exp(x0)) * (1 - t * t));

  if (!dot_path.empty()) {
    std::ofstream out(dot_path);
    out << tape.to_dot();
    if (!out) {
      std::fprintf(stderr, "01_scalar_autograd: cannot write %s\n", dot_path.c_str());
      return 2;
    }
    std::printf("\nwrote the graph to %s (render it with: dot -Tpng %s -o tape.png)\n", dot_path.c_str(),
                dot_path.c_str());
  }
  const double tol = 1e-12 * (1 + std::abs(hand_x) + std::abs(hand_y));
  if (std::abs(gx - hand_x) > tol || std::abs(gy - hand_y) > tol) {
    std::printf("MISMATCH between the tape and the hand-derived gradients\n");
    return 1;
  }
  std::printf("the tape's gradients agree with the hand-derived ones\n");
  return 0;
}
