// Experiment 4: training stability of an MLP on two spirals over norm x batch size x learning
// rate, with several seeds per cell. Every run takes the same number of optimizer steps, so
// the batch sizes are compared per update (a batch of 2 sees 64 times fewer examples than a
// batch of 128 in the same number of steps).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "training.hpp"

namespace lab {

namespace {

const std::vector<Norm> kNorms = {Norm::None, Norm::Layer, Norm::Batch};
constexpr double kMomentum = 0.9;
constexpr double kTarget = 0.9;    // accuracy whose first reaching is steps_to_target
constexpr double kLearned = 0.75;  // "stable" needs this mean test accuracy: halfway from chance to perfect
constexpr std::size_t kPerClass = 512;  // 1024 points: 768 train, 256 test
constexpr double kNoise = 0.03;
const std::vector<std::size_t> kHidden = {64, 64};

struct Grid {
  std::vector<std::size_t> sizes;
  std::vector<double> lrs;
  std::size_t seeds, steps, eval_every;
};

Grid grid(const Config& c) {
  Grid g;
  g.sizes = c.pick<std::vector<std::size_t>>({2, 32}, {2, 4, 8, 32, 128}, {2, 4, 8, 32, 128});
  g.lrs = c.pick<std::vector<double>>({0.01, 0.1, 3}, {0.01, 0.1, 1}, {0.003, 0.01, 0.03, 0.1, 0.3, 1, 3});
  g.seeds = c.pick<std::size_t>(2, 2, 3);
  g.steps = c.pick<std::size_t>(100, 800, 3000);
  g.eval_every = c.pick<std::size_t>(50, 100, 100);
  return g;
}

const char* kMetrics[] = {"test_acc", "test_loss", "train_loss", "last_window_loss", "diverged",
                          "steps_done", "steps_to_target", "test_acc_train_mode"};

// The runs of one (norm, batch size, lr) cell, one per seed.
struct Cell {
  std::vector<double> acc, gap, steps_to_target;
  double diverged = 0;  // fraction of seeds
  double mean_acc() const { return stats(acc).mean; }
};

Cell cell(const std::vector<Row>& rows, Norm n, std::size_t B, double lr) {
  Cell c;
  for (const auto& r : rows) {
    if (r.at("norm") != norm_name(n) || r.at("batch_size") != std::to_string(B) || r.at("lr") != param_num(lr)) continue;
    c.acc.push_back(num(r, "test_acc"));
    c.gap.push_back(num(r, "test_acc") - num(r, "test_acc_train_mode"));
    c.steps_to_target.push_back(num(r, "steps_to_target"));
    c.diverged += num(r, "diverged");
  }
  c.diverged /= std::max<double>(1, static_cast<double>(c.acc.size()));
  return c;
}

// Per (norm, batch size): the largest lr with no diverged seed, the largest "stable" lr (no
// diverged seed and mean accuracy >= kLearned), and the best cell by mean accuracy.
struct Summary4 {
  double max_lr_no_div = std::nan(""), max_lr_stable = std::nan(""), best_lr = std::nan("");
  Cell best;
};

Summary4 summarize(const std::vector<Row>& rows, const Grid& g, Norm n, std::size_t B) {
  Summary4 s;
  double best_acc = -1;
  for (double lr : g.lrs) {
    const Cell c = cell(rows, n, B, lr);
    if (c.diverged == 0) s.max_lr_no_div = lr;
    if (c.diverged == 0 && c.mean_acc() >= kLearned) s.max_lr_stable = lr;
    if (c.diverged == 0 && c.mean_acc() > best_acc) best_acc = c.mean_acc(), s.best_lr = lr, s.best = c;
  }
  return s;
}

std::string lr_or_dash(double lr) { return std::isnan(lr) ? "—" : param_num(lr); }

std::string steps_text(const Cell& c) {
  std::size_t reached = 0;
  for (double s : c.steps_to_target) reached += !std::isnan(s);
  if (reached == 0) return "never";
  return std::to_string(std::lround(stats(c.steps_to_target).mean)) + " (" + std::to_string(reached) + "/" +
         std::to_string(c.steps_to_target.size()) + ")";
}

}  // namespace

void experiment_mlp_stability(const Config& c, Report& rep, Summary& summary) {
  const Grid g = grid(c);
  const std::uint64_t data_seed = derive_seed(c.seed, 4);
  const auto data = tg::two_spirals<float>(kPerClass, kNoise, data_seed);
  const auto split = tg::train_test_split(data, 0.25, data_seed + 1);
  const tg::Dataset<float>& train = split.first;
  const tg::Dataset<float>& test = split.second;

  SweepSpec spec;
  spec.name = "e4_mlp_stability";
  spec.param_cols = {"norm", "batch_size", "lr", "momentum", "steps", "hidden", "seed", "init_seed", "order_seed"};
  spec.metric_cols.assign(std::begin(kMetrics), std::end(kMetrics));
  for (Norm n : kNorms) {
    for (std::size_t B : g.sizes) {
      for (double lr : g.lrs) {
        for (std::size_t s = 0; s < g.seeds; ++s) {
          TrainConfig cfg;
          cfg.norm = n;
          cfg.hidden = kHidden;
          cfg.batch_size = B;
          cfg.steps = g.steps;
          cfg.lr = lr;
          cfg.momentum = kMomentum;
          cfg.init_seed = derive_seed(c.seed, 4, s, 1);  // same weights for every norm, size and lr
          cfg.order_seed = derive_seed(c.seed, 4, s, 2);
          cfg.eval_every = g.eval_every;
          cfg.target_acc = kTarget;
          Run run;
          run.key = std::string(norm_name(n)) + "/B" + std::to_string(B) + "/lr" + param_num(lr) + "/s" + std::to_string(s);
          run.params = {{"norm", norm_name(n)}, {"batch_size", std::to_string(B)}, {"lr", param_num(lr)},
                        {"momentum", param_num(kMomentum)}, {"steps", std::to_string(g.steps)}, {"hidden", "64-64"},
                        {"seed", std::to_string(s)}, {"init_seed", std::to_string(cfg.init_seed)},
                        {"order_seed", std::to_string(cfg.order_seed)}};
          run.fn = [cfg, &train, &test] {
            const TrainResult r = train_classifier(cfg, train, test);
            return std::vector<std::pair<std::string, double>>{
                {"test_acc", r.test.accuracy}, {"test_loss", r.test.loss}, {"train_loss", r.train.loss},
                {"last_window_loss", r.last_window_loss}, {"diverged", r.diverged ? 1.0 : 0.0},
                {"steps_done", static_cast<double>(r.steps_done)}, {"steps_to_target", r.steps_to_target},
                {"test_acc_train_mode", r.test_acc_train_mode}};
          };
          spec.runs.push_back(std::move(run));
        }
      }
    }
  }
  const auto rows = run_sweep(spec, c.sweep(spec.name));

  rep.heading(2, "4. Training stability: MLP on two spirals");
  char what[1400];
  std::snprintf(what, sizeof what,
                "An MLP 2 → [64 → norm → tanh] × 2 → 2 (float32) learns two interleaved spirals (%zu points, noise "
                "%.2f; %zu for training, %zu held out), trained by SGD with momentum %.1f on cross-entropy for "
                "**%zu steps at every batch size**: the batch sizes are compared per optimizer step, so a batch of "
                "%zu sees %zu times fewer examples than a batch of %zu. %zu seeds per cell (a seed fixes the initial "
                "weights, the same for every norm, batch size and learning rate, and the shuffling order). A run "
                "**diverged** when a step's loss was NaN/Inf or the mean loss over %zu steps exceeded 10 × ln 2 "
                "(10 × the loss of a uniform guess); it stops there, and its test accuracy is measured on the "
                "weights it stopped with (non-finite outputs count as wrong). Test accuracy is measured in eval mode "
                "every %zu steps (for the steps to reach %.0f%%) and at the end. Data: `e4_mlp_stability.csv`.",
                2 * kPerClass, kNoise, train.size(), test.size(), kMomentum, g.steps, g.sizes.front(),
                g.sizes.back() / g.sizes.front(), g.sizes.back(), g.seeds, TrainConfig().window, g.eval_every,
                100 * kTarget);
  rep.paragraph(what);

  // Heatmaps: rows = lr (smallest at the bottom), columns = batch size, one panel per norm.
  std::vector<Heatmap> acc_panels, div_panels;
  for (Norm n : kNorms) {
    Heatmap a;
    a.title = std::string(norm_title(n)) + ": mean test accuracy";
    a.xlabel = "batch size";
    a.ylabel = "learning rate";
    a.cblabel = "test accuracy";
    for (std::size_t B : g.sizes) a.xticks.push_back(std::to_string(B));
    for (double lr : g.lrs) a.yticks.push_back(param_num(lr));
    Heatmap d = a;
    d.title = std::string(norm_title(n)) + ": fraction of seeds diverged";
    d.cblabel = "divergence rate";
    for (double lr : g.lrs) {
      std::vector<double> za, zd;
      for (std::size_t B : g.sizes) {
        const Cell cl = cell(rows, n, B, lr);
        za.push_back(cl.mean_acc());
        zd.push_back(cl.diverged);
      }
      a.z.push_back(za);
      d.z.push_back(zd);
    }
    a.zmin = 0.4;
    a.show_values = true;  // labels switch to white on dark cells
    acc_panels.push_back(a);
    div_panels.push_back(d);
  }
  plot_heatmaps(c.out, "e4_accuracy", acc_panels);
  plot_heatmaps(c.out, "e4_divergence", div_panels);
  rep.image("e4_accuracy.png", "mean test accuracy over batch size and learning rate");
  rep.image("e4_divergence.png", "divergence rate over batch size and learning rate");

  // Table: per norm and batch size, the lr limits and the best cell.
  std::vector<std::vector<std::string>> table;
  std::map<std::pair<Norm, std::size_t>, Summary4> sums;
  for (Norm n : kNorms) {
    for (std::size_t B : g.sizes) {
      const Summary4 s = summarize(rows, g, n, B);
      sums[{n, B}] = s;
      table.push_back({norm_title(n), std::to_string(B), lr_or_dash(s.max_lr_no_div), lr_or_dash(s.max_lr_stable),
                       s.best.acc.empty() ? "—" : short_num(s.best.mean_acc()) + " (lr " + param_num(s.best_lr) + ")",
                       s.best.acc.empty() ? "—" : steps_text(s.best)});
    }
  }
  rep.paragraph("Largest learning rate per norm and batch size. **Stable** = no seed diverged *and* the mean test "
                "accuracy is at least " + short_num(100 * kLearned) + "% (halfway from chance to perfect); \"no divergence\" "
                "drops the accuracy "
                "condition. The best cell is the non-diverging learning rate with the highest mean test accuracy; "
                "its steps to " + short_num(100 * kTarget) + "% are averaged over the seeds that reached it.");
  rep.table({"norm", "batch size", "largest lr, no divergence", "largest stable lr", "best mean test acc",
             "steps to " + short_num(100 * kTarget) + "% (seeds)"},
            table);

  // BatchNorm: test accuracy in eval mode (running statistics) vs training mode (statistics of
  // each test batch of the training batch size), at the best lr of each batch size.
  std::vector<std::vector<std::string>> gap_table;
  std::vector<double> gap_by_size;
  for (std::size_t B : g.sizes) {
    const Summary4& s = sums[{Norm::Batch, B}];
    if (s.best.acc.empty()) {
      gap_table.push_back({std::to_string(B), "—", "—", "—", "—"});
      gap_by_size.push_back(std::nan(""));
      continue;
    }
    const double eval_acc = s.best.mean_acc(), gap = stats(s.best.gap).mean;
    gap_by_size.push_back(gap);
    gap_table.push_back({std::to_string(B), param_num(s.best_lr), short_num(eval_acc), short_num(eval_acc - gap),
                         short_num(gap)});
  }
  rep.paragraph("BatchNorm at the end of training, at each batch size's best learning rate: test accuracy in eval "
                "mode (running statistics, how the model is deployed) and in training mode (each test batch of the "
                "training batch size normalized by its own statistics, as during training; the running statistics "
                "are saved and restored around this measurement).");
  rep.table({"batch size", "lr", "eval-mode acc", "train-mode acc", "eval − train"}, gap_table);

  // Reading, from the numbers.
  const std::size_t b0 = g.sizes.front(), b1 = g.sizes.back();
  auto acc_of = [](const Summary4& s) { return s.best.acc.empty() ? std::nan("") : s.best.mean_acc(); };
  auto limit = [&](Norm n, std::size_t B) { return lr_or_dash(sums[{n, B}].max_lr_no_div); };
  double best_overall = 0;
  std::string best_where;
  for (const auto& [k, s] : sums) {
    if (!s.best.acc.empty() && s.best.mean_acc() > best_overall) {
      best_overall = s.best.mean_acc();
      best_where = std::string(norm_title(k.first)) + ", batch " + std::to_string(k.second) + ", lr " + param_num(s.best_lr);
    }
  }
  char buf[900];
  std::snprintf(buf, sizeof buf,
                "**Reading.** The largest learning rate at which no seed diverged is %s / %s / %s (no norm / "
                "LayerNorm / BatchNorm) at batch size %zu and %s / %s / %s at batch size %zu. ",
                limit(Norm::None, b0).c_str(), limit(Norm::Layer, b0).c_str(), limit(Norm::Batch, b0).c_str(), b0,
                limit(Norm::None, b1).c_str(), limit(Norm::Layer, b1).c_str(), limit(Norm::Batch, b1).c_str(), b1);
  std::string text = buf;
  {
    // How far each norm's limit falls from the largest batch to the smallest.
    std::string falls;
    for (Norm n : kNorms) {
      const double hi = sums[{n, b1}].max_lr_no_div, lo = sums[{n, b0}].max_lr_no_div;
      if (std::isnan(hi) || std::isnan(lo)) continue;
      char factor[32];
      std::snprintf(factor, sizeof factor, "%.3g", hi / lo);
      falls += std::string(falls.empty() ? "" : ", ") + factor + "× for " + norm_title(n);
    }
    if (!falls.empty()) {
      text += "From batch size " + std::to_string(b1) + " to " + std::to_string(b0) + " that limit falls " + falls + ". ";
    }
  }
  // Accuracy: compare the norms at the smallest batch size where any of them learned.
  std::size_t first_learned = 0;
  for (std::size_t B : g.sizes) {
    bool any = false;
    for (Norm n : kNorms) any = any || acc_of(sums[{n, B}]) >= kLearned;
    if (any) {
      first_learned = B;
      break;
    }
  }
  if (first_learned == 0) {
    text += "None of the three reached " + short_num(100 * kLearned) + "% mean test accuracy at any batch size in " +
            std::to_string(g.steps) + " steps, so the accuracies compare models that did not learn the spirals "
            "and say nothing about normalization.";
  } else {
    const double ln = acc_of(sums[{Norm::Layer, first_learned}]), bn = acc_of(sums[{Norm::Batch, first_learned}]);
    const double no = acc_of(sums[{Norm::None, first_learned}]);
    if (first_learned != b0) {
      text += "Below batch size " + std::to_string(first_learned) + " none of the three reached " + short_num(100 * kLearned) +
              "% mean test accuracy in " + std::to_string(g.steps) + " steps (" + std::to_string(g.steps * b0) +
              " examples seen at batch size " + std::to_string(b0) + ", " + short_num(static_cast<double>(g.steps * b0) /
              static_cast<double>(train.size()), 2) + " epochs), so there only divergence tells them apart. ";
    }
    std::snprintf(buf, sizeof buf,
                  "At batch size %zu, the smallest where one of them learned, the best mean test accuracy is %s (no "
                  "norm), %s (LayerNorm) and %s (BatchNorm): %s (best overall: %s at %s). ",
                  first_learned, short_num(no).c_str(), short_num(ln).c_str(), short_num(bn).c_str(),
                  first_learned == b1 && b1 != b0
                      ? "only the largest batch size learned at all, so this says nothing about small batches"
                  : bn < ln - 0.05 ? "this agrees with the expectation that BatchNorm suffers from small batches "
                                     "while LayerNorm does not"
                                   : "this does not show the expected advantage of LayerNorm over BatchNorm at "
                                     "small batches",
                  short_num(best_overall).c_str(), best_where.c_str());
    text += buf;
  }
  // BatchNorm's train/eval gap, where BatchNorm learned.
  std::string gaps;
  for (std::size_t i = 0; i < g.sizes.size(); ++i) {
    const Summary4& s = sums[{Norm::Batch, g.sizes[i]}];
    if (acc_of(s) < kLearned || std::isnan(gap_by_size[i])) continue;
    char one[80];
    std::snprintf(one, sizeof one, "%+.1f points at batch size %zu", 100 * gap_by_size[i], g.sizes[i]);
    gaps += std::string(gaps.empty() ? "" : ", ") + one;
  }
  text += gaps.empty() ? "BatchNorm learned at no batch size, so its train/eval gap means little here."
                       : "Where BatchNorm learned, its eval-mode minus training-mode test accuracy is " + gaps + ".";
  rep.paragraph(text);
  nlohmann::json by_norm = nlohmann::json::object();
  for (Norm n : kNorms) {
    nlohmann::json per_size = nlohmann::json::object();
    for (std::size_t B : g.sizes) {
      const Summary4& s = sums[{n, B}];
      per_size[std::to_string(B)] = {{"max_lr_no_divergence", s.max_lr_no_div}, {"max_lr_stable", s.max_lr_stable},
                                     {"best_lr", s.best_lr}, {"best_mean_test_acc", acc_of(s)}};
    }
    by_norm[norm_name(n)] = per_size;
  }
  summary["e4"] = {{"best_mean_test_acc", best_overall}, {"best_cell", best_where}, {"by_norm_and_batch", by_norm},
                   {"smallest_batch_where_a_norm_learned", first_learned},
                   {"batchnorm_eval_minus_train_acc_smallest_batch", gap_by_size.front()},
                   {"batchnorm_eval_minus_train_acc_largest_batch", gap_by_size.back()}};
}

}  // namespace lab
