// Chapter 8: your own op.
//
// Every op in lib/ops is written with the same public API a user has: Tape::of checks the
// inputs, Tape::record opens a node, the Recorder takes the output and what the backward will
// need, and finish() closes the node with a backward function. Here we write one outside the
// library, swish (PyTorch's SiLU for beta = 1, torch.nn.functional.silu):
//   s = sigmoid(beta x),  y = x s
//   dL/dx = dL/dy * (s + beta x s (1 - s)) = dL/dy * (s + beta y (1 - s))
// then (1) compare its values with the formula, (2) gradcheck it in double, (3) see a bad
// argument refused before anything is recorded, and (4) train a small classifier with it.
//
// The backward is a captureless lambda (a plain function pointer: recording allocates no
// closure), so the constant beta cannot be captured: it is saved on the node as a named scalar,
// next to the saved array s. docs/custom-ops.md explains each line.
//
//   08_custom_op                 # beta 1.5, 300 training steps
//   08_custom_op --beta 1 --steps 100
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

namespace {

// The op's named saved state: one array, one scalar (each enum ends with `count`).
enum class SwishSaved : std::size_t { sig, count };
enum class SwishScalar : std::size_t { beta, count };

template <class T>
tg::Var<T> swish(const tg::Var<T>& x, tg::scalar_t<T> beta = 1) {
  tg::Tape<T>& t = tg::Tape<T>::of("swish", {x});  // checks x first: errors name the op
  if (!std::isfinite(beta)) {                      // validate before recording
    throw tg::ValueError("swish: beta must be finite, got " + std::to_string(beta));
  }
  const xt::xarray<T>& xv = t.value(x);
  auto r = t.record("swish", {x});
  xt::xarray<T>& y = r.out(xv.shape());
  xt::xarray<T>& s = r.save(SwishSaved::sig);  // kept for backward (only used there)
  s.resize(xv.shape());
  for (std::size_t i = 0; i < xv.size(); ++i) {
    s.data()[i] = T(1) / (T(1) + std::exp(-beta * xv.data()[i]));
    y.data()[i] = xv.data()[i] * s.data()[i];
  }
  r.set_scalar(SwishScalar::beta, beta);
  return r.finish([](tg::BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const T saved_beta = static_cast<T>(c.scalar(SwishScalar::beta));
    const T* sig = c.saved(SwishSaved::sig).data();
    const T* out = c.output().data();
    const T* g = c.grad().data();
    tg::GradWrite<T> dx = c.input_grad_write(0);  // we write every element: beta 0 or 1
    for (std::size_t i = 0; i < c.output().size(); ++i) {
      const T d = sig[i] + saved_beta * out[i] * (T(1) - sig[i]);
      dx.data[i] = tg::beta_add(dx.beta, dx.data[i], g[i] * d);
    }
  });
}

// The op as a layer, so that it can go into a Sequential.
template <class T>
class Swish : public tg::Module<T> {
 public:
  explicit Swish(double beta) : beta_(beta) {}
  tg::Var<T> forward(tg::Tape<T>&, const tg::Var<T>& x) override { return swish(x, static_cast<T>(beta_)); }
  std::string type_name() const override { return "Swish"; }
  std::string extra_repr() const override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "beta=%g", beta_);
    return buf;
  }

 private:
  double beta_;
};

bool show_values(double beta) {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{-2.0, -0.5, 0.0, 0.5, 2.0}, true);
  auto y = swish(x, beta);
  t.backward(tg::sum(y));
  std::printf("(1) swish(x, beta=%g) and dy/dx\n        x          y      dy/dx    formula\n", beta);
  bool ok = true;
  for (std::size_t i = 0; i < 5; ++i) {
    const double xi = x.value()(i), s = 1 / (1 + std::exp(-beta * xi));
    const double formula = s + beta * xi * s * (1 - s);
    std::printf("  %7.3f  %9.5f  %9.5f  %9.5f\n", xi, y.value()(i), t.grad(x)(i), formula);
    ok = ok && std::abs(y.value()(i) - xi * s) < 1e-12 && std::abs(t.grad(x)(i) - formula) < 1e-12;
  }
  return ok;
}

bool check_gradients(double beta, std::uint64_t seed) {
  tg::Generator gen(seed);
  const tg::GradcheckFn f = [beta](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
    // x used twice: swish's gradient is added to the one that flows through the product.
    return swish(v[0], beta) * v[0];
  };
  const auto r = tg::gradcheck(f, {tg::normal_array<double>({3, 4}, 0, 2, gen)});
  std::printf("\n(2) gradcheck of swish(x, %g) * x, x (3, 4): %s, %zu entries\n    %s\n", beta,
              r.ok ? "passed" : "FAILED", r.checked, r.message.c_str());
  return r.ok;
}

bool check_refusal() {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{1.0f, 2.0f}, true);
  const std::size_t before = t.size();
  try {
    swish(x, NAN);
  } catch (const tg::ValueError& e) {
    std::printf("\n(3) swish(x, nan) throws ValueError: %s\n    tape size before %zu, after %zu\n", e.what(),
                before, t.size());
    return t.size() == before;
  }
  std::printf("\n(3) swish(x, nan) did NOT throw\n");
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  double beta = 1.5;
  std::size_t steps = 300;
  std::uint64_t seed = 0;
  CLI::App app{"Chapter 8: define an op outside the library, gradcheck it and train with it"};
  app.option_defaults()->always_capture_default();
  app.add_option("--beta", beta, "swish's beta (1 = SiLU)");
  app.add_option("--steps", steps, "full-batch Adam steps on the moons")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the data, the initialization and gradcheck's input");
  CLI11_PARSE(app, argc, argv);

  const bool values_ok = show_values(beta);
  const bool grads_ok = check_gradients(beta, seed);
  const bool refusal_ok = check_refusal();

  // (4) Linear -> Swish -> Linear on two moons, full batch, Adam.
  tg::Generator gen(seed);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 16, tg::LinearOptions(), gen);
  net.emplace_back<Swish<float>>(beta);
  net.emplace_back<tg::Linear<float>>(16, 2, tg::LinearOptions(), gen);
  std::printf("\n(4) training\n%s", net.to_string().c_str());
  const auto data = tg::moons<float>(256, 0.1, seed);
  tg::Adam<float> opt(net.parameters(), 0.02);
  tg::Tape<float> tape;
  float first = 0, last = 0;
  for (std::size_t step = 0; step < steps; ++step) {
    tape.reset();
    auto loss = tg::cross_entropy(net(tape, tape.input_view(data.inputs())), data.labels());
    opt.zero_grad();
    tape.backward(loss);
    opt.step();
    (step == 0 ? first : last) = loss.item();
    if (steps == 1) last = first;
  }
  const double accuracy = tg::classification_accuracy(net, data);
  std::printf("loss %.4f -> %.4f after %zu steps, training accuracy %.2f%%\n", first, last, steps,
              100 * accuracy);

  const bool ok = values_ok && grads_ok && refusal_ok && last < first;
  std::printf("%s\n",
              ok ? "the custom op computes, differentiates and trains as it should" : "SOMETHING FAILED");
  return ok ? 0 : 1;
}
