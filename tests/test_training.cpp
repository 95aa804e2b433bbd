// Training helpers: the progress line's text, the CSV metrics log, the training loop and
// accuracy, and seeded determinism of a whole training run.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

fs::path scratch_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tapegrad_test_training_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The model of examples/03_train_mlp.cpp's default: 2 -> [Linear 64, LayerNorm, Tanh] x 2 -> 2.
std::shared_ptr<tg::Sequential<float>> make_mlp(std::uint64_t seed, std::size_t hidden = 64) {
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<float>>();
  net->emplace_back<tg::Linear<float>>(2, hidden, tg::LinearOptions(), gen);
  net->emplace_back<tg::LayerNorm<float>>(tg::Shape{hidden});
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(hidden, hidden, tg::LinearOptions(), gen);
  net->emplace_back<tg::LayerNorm<float>>(tg::Shape{hidden});
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(hidden, 2, tg::LinearOptions(), gen);
  return net;
}

struct Run {
  std::vector<double> losses;  // one per step
  double accuracy = 0;
  tg::StateDict<float> state;
};

// examples/03_train_mlp.cpp's training, smaller: a seeded MLP on two spirals with Adam and a
// cosine learning-rate schedule; everything random comes from `seed`.
Run train_spirals(std::uint64_t seed, std::size_t epochs) {
  const auto data = tg::two_spirals<float>(500, 0.02, seed);
  const auto [train, test] = tg::train_test_split(data, 0.25, seed);
  auto net = make_mlp(seed);
  tg::Adam<float> opt(net->parameters(), 0.01);
  tg::CosineAnnealingLR<float> schedule(opt, static_cast<std::int64_t>(epochs));
  tg::DataLoader<float> loader(train, 32, /*shuffle=*/true, seed);
  tg::Tape<float> tape;
  Run run;
  const tg::LossFn<float> loss_fn = [&](tg::Tape<float>& t, const tg::Batch<float>& b) {
    auto loss = tg::cross_entropy(net->forward(t, t.input(b.inputs)), b.labels);
    run.losses.push_back(static_cast<double>(loss.item()));
    return loss;
  };
  for (std::size_t e = 0; e < epochs; ++e) {
    tg::train_epoch(loader, opt, tape, loss_fn);
    schedule.step();
  }
  run.accuracy = tg::classification_accuracy(*net, test);
  run.state = net->state_dict();
  return run;
}

}  // namespace

TEST_CASE("format_progress shows epoch, step, loss, rate and ETA") {
  tg::ProgressInfo p;
  p.epoch = 3;
  p.epochs = 20;
  p.step = 450;
  p.total_steps = 3000;
  p.loss = 0.41234;
  p.elapsed_seconds = 9.0;  // 50 steps/s -> 2550 steps left = 51 s
  CHECK(tg::format_progress(p) == "epoch 3/20  step 450/3000  loss 0.4123  50.0 steps/s  ETA 0:51");
  p.examples = 450 * 32;  // 1600 ex/s
  CHECK(tg::format_progress(p) == "epoch 3/20  step 450/3000  loss 0.4123  1600 ex/s  ETA 0:51");

  tg::ProgressInfo unknown;  // totals unknown, no time yet, no loss
  unknown.epoch = 1;
  unknown.step = 7;
  CHECK(tg::format_progress(unknown) == "epoch 1  step 7");
}

TEST_CASE("durations and rates are formatted compactly") {
  CHECK(tg::format_duration(7.4) == "0:07");
  CHECK(tg::format_duration(750) == "12:30");
  CHECK(tg::format_duration(3723) == "1:02:03");
  CHECK(tg::format_duration(-1) == "?");
  CHECK(tg::format_duration(std::nan("")) == "?");
  CHECK(tg::format_rate(0.1234) == "0.123");
  CHECK(tg::format_rate(3.14159) == "3.14");
  CHECK(tg::format_rate(12.34) == "12.3");
  CHECK(tg::format_rate(1520.4) == "1520");
  CHECK(tg::format_rate(2.5e6) == "2.50e+06");
}

TEST_CASE("a progress line redraws in place with carriage returns and clears itself") {
  std::ostringstream out;
  {
    tg::ProgressLine line(2, 4, out, /*enabled=*/true, /*min_interval=*/0);
    line.step(1, 1.5, 8);
    line.step(1, 1.25, 8);
    line.clear();
    const std::string text = out.str();
    CHECK(text.rfind("\repoch 1/2  step 1/4  loss 1.5", 0) == 0);
    CHECK_THAT(text, Contains("\repoch 1/2  step 2/4  loss 1.25"));
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.back() == '\r');  // cleared: the cursor is back at the start of the line
    CHECK(line.info().examples == 16);
  }
  std::ostringstream quiet;
  tg::ProgressLine off(2, 4, quiet, /*enabled=*/false);
  off.step(1, 0.5);
  off.clear();
  CHECK(quiet.str().empty());
  CHECK(off.info().step == 1);
}

TEST_CASE("the metrics log writes a header from the first row and one flushed row per call") {
  const auto path = scratch_file("metrics.csv");
  tg::MetricsLog log(path.string());
  log.write({{"epoch", 1}, {"train_loss", 0.5}, {"test_accuracy", 0.875}});
  // Flushed: readable before the log is closed.
  CHECK(read_text(path) == "epoch,train_loss,test_accuracy\n1,0.5,0.875\n");
  log.write({{"epoch", 2}, {"train_loss", 0.1 + 0.2}, {"test_accuracy", std::nan("")}});
  CHECK(read_text(path) == "epoch,train_loss,test_accuracy\n1,0.5,0.875\n2,0.30000000000000004,nan\n");
  CHECK(log.rows() == 2);
  CHECK(log.columns() == std::vector<std::string>{"epoch", "train_loss", "test_accuracy"});

  CHECK_THROWS_AS(log.write({{"epoch", 3}, {"train_loss", 0.2}}), tg::ValueError);
  CHECK_THROWS_WITH(log.write({{"epoch", 3}, {"loss", 0.2}, {"test_accuracy", 1}}),
                    Contains("(epoch,loss,test_accuracy)") && Contains("(epoch,train_loss,test_accuracy)"));
  CHECK_THROWS_AS(log.write({}), tg::ValueError);
  CHECK(log.rows() == 2);
  CHECK(read_text(path) == "epoch,train_loss,test_accuracy\n1,0.5,0.875\n2,0.30000000000000004,nan\n");

  tg::MetricsLog bad(scratch_file("bad.csv").string());
  CHECK_THROWS_WITH(bad.write({{"a,b", 1}}), Contains("\"a,b\""));
  CHECK_THROWS_WITH(bad.write({{"a", 1}, {"a", 2}}), Contains("appears twice"));
  CHECK(read_text(scratch_file("bad.csv")).empty());
  CHECK_THROWS_AS(tg::MetricsLog((scratch_file("no_dir") / "x.csv").string()), tg::IoError);
  fs::remove_all(path.parent_path());
}

TEST_CASE("metric values are written in their shortest round-trip form") {
  CHECK(tg::format_metrics_values({{"a", 3}, {"b", -0.25}, {"c", 1e-7}, {"d", 1.0 / 3}}) ==
        "3,-0.25,1e-07,0.3333333333333333");
}

TEST_CASE("argmax_rows and classification_accuracy count the right predictions and keep the mode") {
  xt::xarray<float> logits = {{0.1f, 0.9f}, {2.0f, -1.0f}, {0.5f, 0.5f}};
  CHECK(tg::argmax_rows(logits) == std::vector<std::int64_t>{1, 0, 0});

  // A Linear whose logits are (x0, x1): predicts the larger coordinate.
  tg::Sequential<float> net;
  auto& lin = net.emplace_back<tg::Linear<float>>(2, 2);
  net.emplace_back<tg::BatchNorm1d<float>>(2, tg::BatchNormOptions().affine(false).momentum(std::nullopt));
  lin.weight->value = xt::xarray<float>{{1, 0}, {0, 1}};
  lin.bias->value = xt::zeros<float>({2});
  xt::xarray<float> x = {{1, 0}, {0, 1}, {3, 1}, {0, 2}, {5, 6}};
  tg::Dataset<float> data(x, std::vector<std::int64_t>{0, 1, 1, 1, 0});  // 3 of 5 match
  // Eval mode with unit running variance and zero mean: BatchNorm is (nearly) the identity.
  CHECK(tg::classification_accuracy(net, data, 2) == Approx(0.6));
  CHECK(net.is_training());
  net.eval();
  CHECK(tg::classification_accuracy(net, data) == Approx(0.6));
  CHECK_FALSE(net.is_training());
  CHECK(net.state_dict().at("1.num_batches_tracked")() == 0.0f);  // no statistics updated
}

TEST_CASE("train_epoch makes one optimizer step per batch and reports the mean loss") {
  tg::Parameter<double> w(xt::zeros<double>({1}));
  tg::SGD<double> opt({&w}, 0.1);
  xt::xarray<double> xs = xt::xarray<double>::from_shape({3, 1}), ys = xs;
  xs.data()[0] = 1, xs.data()[1] = 2, xs.data()[2] = 3;
  ys = 2.0 * xs;
  tg::Dataset<double> data(xs, ys);
  tg::DataLoader<double> loader(data, 2);
  tg::Tape<double> tape;
  std::ostringstream out;
  tg::ProgressLine progress(1, 2, out, true, 0);
  const tg::LossFn<double> fn = [&](tg::Tape<double>& t, const tg::Batch<double>& b) {
    return tg::mse_loss(t.input(b.inputs) * t.param(w), t.constant(b.targets));
  };
  const auto stats = tg::train_epoch(loader, opt, tape, fn, &progress, 1);
  CHECK(stats.steps == 2);
  CHECK(stats.examples == 3);
  // Batch 1: x = (1, 2), w = 0: loss = (4 + 16) / 2 = 10, dL/dw = -(1*2 + 2*4) * 2 / 2 = -10,
  // w = 1. Batch 2: x = 3, loss = (3 - 6)^2 = 9. Mean 9.5.
  CHECK(stats.mean_loss == Approx(9.5));
  CHECK(w.value(0) == Approx(1.0 + 0.1 * 2 * 3 * 3));  // dL/dw = 2 * 3 * (3 - 6) = -18
  CHECK(progress.info().step == 2);
  CHECK_THAT(out.str(), Contains("step 2/2  loss 9"));

  const tg::LossFn<double> not_scalar = [&](tg::Tape<double>& t, const tg::Batch<double>& b) {
    return t.input(b.inputs) * t.param(w);
  };
  CHECK_THROWS_AS(tg::train_epoch(loader, opt, tape, not_scalar), tg::ShapeError);
}

TEST_CASE("a seeded training run is deterministic: same seed, same loss curve and weights, bit for bit") {
  const Run a = train_spirals(7, 3);
  const Run b = train_spirals(7, 3);
  REQUIRE(a.losses.size() == 3 * 24);  // 750 train examples / 32 -> 24 batches per epoch
  CHECK(a.losses == b.losses);         // exact equality of doubles from float losses
  for (const auto& [k, v] : a.state) {
    INFO(k);
    CHECK(std::memcmp(v.data(), b.state.at(k).data(), v.size() * sizeof(float)) == 0);
  }
  const Run c = train_spirals(8, 3);
  CHECK(c.losses != a.losses);
}

TEST_CASE("an MLP trained on two spirals with a fixed seed reaches 95% test accuracy") {
  const Run r = train_spirals(1, 80);
  INFO("final loss " << r.losses.back() << ", accuracy " << r.accuracy);
  CHECK(r.accuracy >= 0.95);
  CHECK(r.losses.back() < 0.2);
}

TEST_CASE("an RNN trained on next-step sine prediction with a fixed seed beats repeating the last value 5x") {
  // examples/04_train_rnn.cpp --task sine, smaller: RNN(1, 16) over T = 10, Linear head on the
  // last state, MSE, Adam 3e-3, gradient norm clipped at 1.
  const std::size_t T = 10;
  const auto train = tg::sine_next_step<float>(2000, T, 0);
  const auto test = tg::sine_next_step<float>(500, T, 1);
  tg::Generator gen(0);
  tg::RNN<float> rnn(1, 16, tg::RNNOptions().batch_first(true), gen);
  tg::Linear<float> head(16, 1, tg::LinearOptions(), gen);
  std::vector<tg::Parameter<float>*> params = rnn.parameters();
  for (auto* p : head.parameters()) params.push_back(p);
  tg::Adam<float> opt(params, 3e-3);
  const auto predict = [&](tg::Tape<float>& t, const xt::xarray<float>& x) {
    return head.forward(t, tg::select(rnn.forward(t, t.input(x)), 1, T - 1));
  };
  tg::DataLoader<float> loader(train, 50, true, 0);
  tg::Tape<float> tape;
  for (int epoch = 0; epoch < 5; ++epoch) {
    for (const tg::Batch<float>& b : loader) {
      tape.reset();
      auto loss = tg::mse_loss(predict(tape, b.inputs), tape.constant(b.targets));
      opt.zero_grad();
      tape.backward(loss);
      tg::clip_grad_norm(params, 1.0);
      opt.step();
    }
  }
  tape.reset();
  const xt::xarray<float> pred = predict(tape, test.inputs()).value();
  double mse = 0, last_value = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    const double y = test.targets()(i, 0);
    mse += std::pow(pred(i, 0) - y, 2) / static_cast<double>(test.size());
    last_value += std::pow(test.inputs()(i, T - 1, 0) - y, 2) / static_cast<double>(test.size());
  }
  INFO("test MSE " << mse << ", repeat-the-last-value MSE " << last_value);
  CHECK(last_value > 0.05);
  CHECK(mse < last_value / 5);
}

TEST_CASE(
    "train_epoch's hooks run after backward and after each step: clipping in the hook equals a hand-written loop") {
  // Two identical models: one trained by train_epoch with clip_grad_norm in before_step and a
  // per-batch StepLR in after_step, one by the loop written out. Weights must agree bit for bit.
  const xt::xarray<double> xs = tgtest::randn({12, 3}, 5, 3.0), ys = tgtest::randn({12, 1}, 6, 3.0);
  tg::Dataset<double> data(xs, ys);
  const xt::xarray<double> w0 = tgtest::randn({3, 1}, 7);
  tg::Parameter<double> w(w0), w_ref(w0);
  tg::SGD<double> opt({&w}, 0.1, tg::SGDOptions{0.9}), opt_ref({&w_ref}, 0.1, tg::SGDOptions{0.9});
  tg::StepLR<double> sched(opt, 2, 0.5), sched_ref(opt_ref, 2, 0.5);
  const auto loss_of = [](tg::Tape<double>& t, tg::Parameter<double>& p, const tg::Batch<double>& b) {
    return tg::mse_loss(tg::matmul(t.input(b.inputs), t.param(p)), t.constant(b.targets));
  };
  std::vector<std::size_t> before_steps, after_steps;
  std::vector<double> norms, losses;
  tg::StepHooks<double> hooks;
  hooks.before_step = [&](std::size_t step, double loss, tg::Optimizer<double>& o) {
    before_steps.push_back(step);
    losses.push_back(loss);
    norms.push_back(tg::clip_grad_norm(o.params(), 1.0));
  };
  hooks.after_step = [&](std::size_t step, double, tg::Optimizer<double>&) {
    after_steps.push_back(step);
    sched.step();
  };
  tg::DataLoader<double> loader(data, 3);
  tg::Tape<double> tape;
  const tg::LossFn<double> fn = [&](tg::Tape<double>& t, const tg::Batch<double>& b) {
    return loss_of(t, w, b);
  };
  const auto stats = tg::train_epoch(loader, opt, tape, fn, hooks);
  CHECK(stats.steps == 4);
  CHECK(before_steps == std::vector<std::size_t>{0, 1, 2, 3});
  CHECK(after_steps == before_steps);
  CHECK(sched.last_epoch() == 4);

  tg::DataLoader<double> loader_ref(data, 3);
  tg::Tape<double> t;
  std::size_t k = 0;
  bool clipped = false;
  for (const auto& b : loader_ref) {
    t.reset();
    auto loss = loss_of(t, w_ref, b);
    CHECK(loss.item() == losses[k]);
    opt_ref.zero_grad();
    t.backward(loss);
    const double norm = tg::clip_grad_norm(opt_ref.params(), 1.0);
    CHECK(norm == norms[k]);
    clipped = clipped || norm > 1.0;
    opt_ref.step();
    sched_ref.step();
    ++k;
  }
  CHECK(clipped);  // the clipping did something
  CHECK((w.value == w_ref.value));
  CHECK(opt.lr() == opt_ref.lr());
}

TEST_CASE("an exception from a step hook ends the epoch there; before_step's skips that batch's step") {
  tg::Parameter<double> w(tgtest::randn({1, 1}, 9));
  tg::SGD<double> opt({&w}, 0.1);
  tg::Dataset<double> data(tgtest::randn({4, 1}, 1), tgtest::randn({4, 1}, 2));
  tg::DataLoader<double> loader(data, 1);
  tg::Tape<double> tape;
  const tg::LossFn<double> fn = [&](tg::Tape<double>& t, const tg::Batch<double>& b) {
    return tg::mse_loss(tg::matmul(t.input(b.inputs), t.param(w)), t.constant(b.targets));
  };
  tg::StepHooks<double> hooks;
  hooks.before_step = [&](std::size_t step, double, tg::Optimizer<double>&) {
    if (step == 2) throw tg::ValueError("stop at step " + std::to_string(step));
  };
  xt::xarray<double> after_two;
  hooks.after_step = [&](std::size_t step, double, tg::Optimizer<double>&) {
    if (step == 1) after_two = w.value;
  };
  tgtest::expect_error<tg::ValueError>([&] { tg::train_epoch(loader, opt, tape, fn, hooks); },
                                       {"stop at step 2"});
  CHECK((w.value == after_two));  // the third batch's step was not taken
}
