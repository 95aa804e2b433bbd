// Chapter 3: training a classifier.
//
// An MLP learns to tell two interleaved spirals apart (or, with --dataset mnist, to read
// handwritten digits). Everything a training loop needs is here, in the open:
//   data     two_spirals / load_mnist, train_test_split, a shuffling DataLoader
//   model    Linear -> [LayerNorm | BatchNorm1d] -> Tanh ... -> Linear (examples/common/mlp.hpp)
//   loss     cross_entropy on the logits
//   update   Adam, with the learning rate annealed along a cosine to 0 over the epochs
//   report   a progress line on the terminal, one line per epoch, optionally a CSV (--log)
//            and a PNG of its curves (--plot: train loss, and test accuracy on the right axis)
//
//   03_train_mlp                       # spirals, ~99% test accuracy in under a second
//   03_train_mlp --norm none --seed 1
//   03_train_mlp --plot                # 03_train_mlp_metrics.csv and its curves, .png
//   03_train_mlp --dataset mnist       # needs scripts/fetch-mnist once; ~93% test accuracy
//
// Try the norms: with LayerNorm (the default) the spirals are learned from every seed we tried
// (97.5-99.75% over seeds 0-7); without normalization, or with BatchNorm, this small tanh MLP
// mostly stalls near chance (47-90%) within 40 epochs. PyTorch, with the same model and
// settings, behaves the same way. On MNIST all three reach about 93%.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>

#include "mlp.hpp"
#include "plot_flag.hpp"

namespace tg = tapegrad;

namespace {

struct Options {
  std::string dataset = "spirals";
  std::string norm = "layer";
  std::vector<std::size_t> hidden;  // empty: the dataset's default
  std::size_t batch_size = 32;
  std::optional<double> lr;
  std::optional<std::size_t> epochs;
  std::uint64_t seed = 0;
  std::size_t points = 1000;  // spirals: points per class
  double noise = 0.02;        // spirals: std of the Gaussian noise on each point
  std::string mnist_dir;
  std::string log;
  double target = 0;  // exit status 1 if the final test accuracy is below this (0 = no check)
};

struct Data {
  tg::Dataset<float> train, test;
  std::size_t classes = 0;
};

Data load_data(const Options& o) {
  tg::Dataset<float> all;
  if (o.dataset == "spirals") {
    all = tg::two_spirals<float>(o.points, o.noise, o.seed);
  } else {
    const std::string dir = o.mnist_dir.empty() ? tg::default_mnist_dir() : o.mnist_dir;
    all = tg::load_mnist<float>(dir);
  }
  auto [train, test] = tg::train_test_split(all, 0.2, o.seed);
  return {std::move(train), std::move(test), all.num_classes()};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 3: train an MLP classifier on two spirals or MNIST"};
  app.option_defaults()->always_capture_default();
  app.add_option("--dataset", o.dataset, "spirals or mnist")->check(CLI::IsMember({"spirals", "mnist"}));
  app.add_option("--norm", o.norm, "normalization after each hidden Linear")
      ->check(CLI::IsMember({"none", "layer", "batch"}));
  app.add_option("--hidden", o.hidden, "hidden layer widths [spirals: 64 64, mnist: 128]")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size", o.batch_size, "examples per step")->check(CLI::Range(1, 1 << 20));
  app.add_option("--lr", o.lr, "Adam learning rate [spirals: 0.01, mnist: 0.001]")
      ->check(CLI::PositiveNumber);
  app.add_option("--epochs", o.epochs, "passes over the training set [spirals: 40, mnist: 8]")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--seed", o.seed, "seed of the data, the initialization and the shuffling");
  app.add_option("--points", o.points, "spirals: points per class")->check(CLI::Range(10, 10000000));
  app.add_option("--noise", o.noise, "spirals: noise std")->check(CLI::Range(0.0, 1.0));
  app.add_option("--mnist-dir", o.mnist_dir, "MNIST directory [default_mnist_dir(): .cache/mnist]");
  app.add_option("--log", o.log, "write per-epoch metrics to this CSV file");
  examples::PlotFlag plot;
  plot.add_to(app);
  app.add_option("--target", o.target, "exit with status 1 if the final test accuracy is below this")
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);
  o.log = plot.csv_path(o.log, "03_train_mlp");

  const bool mnist = o.dataset == "mnist";
  if (o.hidden.empty()) o.hidden = mnist ? std::vector<std::size_t>{128} : std::vector<std::size_t>{64, 64};
  const double lr = o.lr.value_or(mnist ? 1e-3 : 1e-2);
  const std::size_t epochs = o.epochs.value_or(mnist ? 8 : 40);

  try {
    const Data data = load_data(o);
    const std::size_t features = data.train.example_shape().at(0);
    auto net = examples::make_mlp<float>(features, o.hidden, data.classes, o.norm, o.seed);
    tg::Adam<float> opt(net->parameters(), lr);
    // The learning rate follows a half cosine from lr down to 0 over the run: large steps
    // early, fine ones at the end, where a constant rate keeps the loss jittering.
    tg::CosineAnnealingLR<float> schedule(opt, static_cast<std::int64_t>(epochs));
    tg::DataLoader<float> loader(data.train, o.batch_size, /*shuffle=*/true, o.seed);
    std::optional<tg::MetricsLog> log;
    if (!o.log.empty()) log.emplace(o.log);

    std::printf("%s: %zu training and %zu test examples, %zu features, %zu classes\n", o.dataset.c_str(),
                data.train.size(), data.test.size(), features, data.classes);
    std::printf("model (%zu parameters):\n%s", net->num_parameters(), net->to_string().c_str());
    std::printf("Adam lr %g (cosine-annealed to 0), batch size %zu, %zu epochs, seed %llu\n\n", lr,
                o.batch_size, epochs, static_cast<unsigned long long>(o.seed));

    tg::Tape<float> tape;
    const tg::LossFn<float> loss_fn = [&](tg::Tape<float>& t, const tg::Batch<float>& b) {
      return tg::cross_entropy(net->forward(t, t.input(b.inputs)), b.labels);
    };
    const auto start = std::chrono::steady_clock::now();
    tg::ProgressLine progress(epochs, epochs * loader.size());
    double accuracy = 0;
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
      const tg::EpochStats stats = tg::train_epoch(loader, opt, tape, loss_fn, &progress, epoch);
      schedule.step();
      accuracy = tg::classification_accuracy(*net, data.test);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress.clear();
      std::printf("epoch %3zu/%zu  train loss %.4f  test accuracy %6.2f%%  (%.1f s)\n", epoch, epochs,
                  stats.mean_loss, 100 * accuracy, seconds);
      std::fflush(stdout);
      if (log) {
        log->write({{"epoch", static_cast<double>(epoch)},
                    {"train_loss", stats.mean_loss},
                    {"test_accuracy", accuracy},
                    {"seconds", seconds}});
      }
    }
    std::printf("\nfinal test accuracy: %.2f%%\n", 100 * accuracy);
    if (log) std::printf("metrics written to %s\n", o.log.c_str());
    tg::PlotOptions plot_options;
    plot_options.title = "03_train_mlp: " + o.dataset + ", norm " + o.norm;
    plot_options.ylabel = "train loss (cross-entropy)";
    plot_options.y2label = "test accuracy";
    plot.draw(o.log, plot_options);
    if (accuracy < o.target) {
      std::printf("below the target of %.2f%%\n", 100 * o.target);
      return 1;
    }
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "03_train_mlp: %s\n", e.what());
    return 2;
  }
  return 0;
}
