// Experiment 4: training stability of an MLP on two spirals over norm x batch size x learning
// rate, with several seeds per cell. Every run takes the same number of optimizer steps, so
// the batch sizes are compared per update (a batch of 2 sees 64 times fewer examples than a
// batch of 128 in the same number of steps).
#include <algorithm>
#include <cmath>

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

const std::vector<std::string> kMetrics = {"test_acc",         "test_loss",          "train_loss",
                                           "last_window_loss", "diverged",           "steps_done",
                                           "steps_to_target",  "test_acc_train_mode"};

// --- run -------------------------------------------------------------------------------------

// One seed of one (norm, batch size, lr) cell; the seed fixes the same initial weights for
// every norm, size and lr.
Run make_run(const Config& c, const Grid& g, Norm n, std::size_t B, double lr, std::size_t s,
             const tg::Dataset<float>& train, const tg::Dataset<float>& test) {
  TrainConfig cfg;
  cfg.norm = n;
  cfg.hidden = kHidden;
  cfg.batch_size = B;
  cfg.steps = g.steps;
  cfg.lr = lr;
  cfg.momentum = kMomentum;
  cfg.init_seed = derive_seed(c.seed, 4, s, 1);
  cfg.order_seed = derive_seed(c.seed, 4, s, 2);
  cfg.eval_every = g.eval_every;
  cfg.target_acc = kTarget;
  Run run;
  run.key =
      std::string(norm_name(n)) + "/B" + std::to_string(B) + "/lr" + param_num(lr) + "/s" + std::to_string(s);
  run.params = sgd_params(cfg);
  run.params.insert(run.params.end(), {{"seed", std::to_string(s)},
                                       {"init_seed", std::to_string(cfg.init_seed)},
                                       {"order_seed", std::to_string(cfg.order_seed)}});
  run.fn = classifier_fn(cfg, kMetrics, train, test);
  return run;
}

std::vector<Row> run_grid(const Config& c, const Grid& g, const tg::Dataset<float>& train,
                          const tg::Dataset<float>& test) {
  SweepSpec spec;
  spec.name = "e4_mlp_stability";
  spec.param_cols = {"norm",   "batch_size", "lr",        "momentum",  "steps",
                     "hidden", "seed",       "init_seed", "order_seed"};
  spec.metric_cols = kMetrics;
  for (Norm n : kNorms) {
    for (std::size_t B : g.sizes) {
      for (double lr : g.lrs) {
        for (std::size_t s = 0; s < g.seeds; ++s)
          spec.runs.push_back(make_run(c, g, n, B, lr, s, train, test));
      }
    }
  }
  return run_sweep(spec, c.sweep(spec.name));
}

// --- aggregate -------------------------------------------------------------------------------

// The runs of one (norm, batch size, lr) cell, one per seed.
struct Cell {
  std::vector<double> acc, gap, steps_to_target;
  double diverged = 0;  // fraction of seeds
  double mean_acc() const { return stats(acc).mean; }
};

Cell cell(const std::vector<Row>& rows, Norm n, std::size_t B, double lr) {
  Cell c;
  for (const auto& r : rows) {
    if (r.at("norm") != norm_name(n) || r.at("batch_size") != std::to_string(B) ||
        r.at("lr") != param_num(lr))
      continue;
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
struct SizeSummary {
  double max_lr_no_div = std::nan(""), max_lr_stable = std::nan(""), best_lr = std::nan("");
  Cell best;
  double best_acc() const { return best.acc.empty() ? std::nan("") : best.mean_acc(); }
};

SizeSummary summarize(const std::vector<Row>& rows, const Grid& g, Norm n, std::size_t B) {
  SizeSummary s;
  double best_acc = -1;
  for (double lr : g.lrs) {
    const Cell c = cell(rows, n, B, lr);
    if (c.diverged == 0) s.max_lr_no_div = lr;
    if (c.diverged == 0 && c.mean_acc() >= kLearned) s.max_lr_stable = lr;
    if (c.diverged == 0 && c.mean_acc() > best_acc) best_acc = c.mean_acc(), s.best_lr = lr, s.best = c;
  }
  return s;
}

// One norm's cells as heatmap grids: [lr index][batch size index].
struct NormGrids {
  std::vector<std::vector<double>> mean_acc, diverged;
};

struct Results {
  std::size_t train_size = 0, test_size = 0;
  std::map<Norm, NormGrids> grids;
  std::map<std::pair<Norm, std::size_t>, SizeSummary> sums;
  std::vector<double> gap_by_size;  // BatchNorm eval − train-mode accuracy at each size's best lr
  std::size_t first_learned = 0;    // smallest batch size where a norm reached kLearned; 0 = none
  double best_overall = 0;
  std::string best_where;
};

NormGrids norm_grids(const std::vector<Row>& rows, const Grid& g, Norm n) {
  NormGrids out;
  for (double lr : g.lrs) {
    std::vector<double> za, zd;
    for (std::size_t B : g.sizes) {
      const Cell cl = cell(rows, n, B, lr);
      za.push_back(cl.mean_acc());
      zd.push_back(cl.diverged);
    }
    out.mean_acc.push_back(za);
    out.diverged.push_back(zd);
  }
  return out;
}

void find_best(Results& res) {
  for (const auto& [k, s] : res.sums) {
    if (!s.best.acc.empty() && s.best.mean_acc() > res.best_overall) {
      res.best_overall = s.best.mean_acc();
      res.best_where = std::string(norm_title(k.first)) + ", batch " + std::to_string(k.second) + ", lr " +
                       param_num(s.best_lr);
    }
  }
}

Results aggregate(const std::vector<Row>& rows, const Grid& g) {
  Results res;
  for (Norm n : kNorms) {
    res.grids[n] = norm_grids(rows, g, n);
    for (std::size_t B : g.sizes) res.sums[{n, B}] = summarize(rows, g, n, B);
  }
  for (std::size_t B : g.sizes) {
    const SizeSummary& s = res.sums[{Norm::Batch, B}];
    res.gap_by_size.push_back(s.best.acc.empty() ? std::nan("") : stats(s.best.gap).mean);
  }
  for (std::size_t B : g.sizes) {
    bool any = false;
    for (Norm n : kNorms) any = any || res.sums[{n, B}].best_acc() >= kLearned;
    if (any) {
      res.first_learned = B;
      break;
    }
  }
  find_best(res);
  return res;
}

// --- report ----------------------------------------------------------------------------------

std::string lr_or_dash(double lr) { return std::isnan(lr) ? "—" : param_num(lr); }

std::string steps_text(const Cell& c) {
  std::size_t reached = 0;
  for (double s : c.steps_to_target) reached += !std::isnan(s);
  if (reached == 0) return "never";
  return std::to_string(std::lround(stats(c.steps_to_target).mean)) + " (" + std::to_string(reached) + "/" +
         std::to_string(c.steps_to_target.size()) + ")";
}

std::string intro_text(const Grid& g, const Results& res) {
  return "An MLP 2 → [64 → norm → tanh] × 2 → 2 (float32) learns two interleaved spirals (" +
         std::to_string(2 * kPerClass) + " points, noise " + fixed(kNoise, 2) + "; " +
         std::to_string(res.train_size) + " for training, " + std::to_string(res.test_size) +
         " held out), trained by SGD with momentum " + fixed(kMomentum, 1) + " on cross-entropy for **" +
         std::to_string(g.steps) +
         " steps at every batch size**: the batch sizes are compared per optimizer step, so a batch of " +
         std::to_string(g.sizes.front()) + " sees " + std::to_string(g.sizes.back() / g.sizes.front()) +
         " times fewer examples than a batch of " + std::to_string(g.sizes.back()) + ". " +
         std::to_string(g.seeds) +
         " seeds per cell (a seed fixes the initial weights, the same for every norm, batch size and learning rate, "
         "and the shuffling order). A run **diverged** when a step's loss was NaN/Inf or the mean loss over " +
         std::to_string(TrainConfig().window) +
         " steps exceeded 10 × ln 2 (10 × the loss of a uniform guess); it stops there, and its test accuracy is "
         "measured on the weights it stopped with (non-finite outputs count as wrong). Test accuracy is measured in "
         "eval mode every " +
         std::to_string(g.eval_every) + " steps (for the steps to reach " + fixed(100 * kTarget, 0) +
         "%) and at the end. Data: `e4_mlp_stability.csv`.";
}

// Heatmaps: rows = lr (smallest at the bottom), columns = batch size, one panel per norm.
void report_heatmaps(const Config& c, const Grid& g, const Results& res, Report& rep) {
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
    a.z = res.grids.at(n).mean_acc;
    d.z = res.grids.at(n).diverged;
    a.zmin = 0.4;
    a.show_values = true;  // labels switch to white on dark cells
    acc_panels.push_back(a);
    div_panels.push_back(d);
  }
  plot_heatmaps(c.out, "e4_accuracy", acc_panels);
  plot_heatmaps(c.out, "e4_divergence", div_panels);
  rep.image("e4_accuracy.png", "mean test accuracy over batch size and learning rate");
  rep.image("e4_divergence.png", "divergence rate over batch size and learning rate");
}

// Per norm and batch size, the lr limits and the best cell.
void report_limits_table(const Grid& g, const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (Norm n : kNorms) {
    for (std::size_t B : g.sizes) {
      const SizeSummary& s = res.sums.at({n, B});
      table.push_back(
          {norm_title(n), std::to_string(B), lr_or_dash(s.max_lr_no_div), lr_or_dash(s.max_lr_stable),
           s.best.acc.empty() ? "—" : short_num(s.best.mean_acc()) + " (lr " + param_num(s.best_lr) + ")",
           s.best.acc.empty() ? "—" : steps_text(s.best)});
    }
  }
  rep.paragraph(
      "Largest learning rate per norm and batch size. **Stable** = no seed diverged *and* the mean test "
      "accuracy is at least " +
      short_num(100 * kLearned) +
      "% (halfway from chance to perfect); \"no divergence\" "
      "drops the accuracy "
      "condition. The best cell is the non-diverging learning rate with the highest mean test accuracy; "
      "its steps to " +
      short_num(100 * kTarget) + "% are averaged over the seeds that reached it.");
  rep.table({"norm", "batch size", "largest lr, no divergence", "largest stable lr", "best mean test acc",
             "steps to " + short_num(100 * kTarget) + "% (seeds)"},
            table);
}

// BatchNorm: test accuracy in eval mode (running statistics) vs training mode (statistics of
// each test batch of the training batch size), at the best lr of each batch size.
void report_gap_table(const Grid& g, const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> gap_table;
  for (std::size_t i = 0; i < g.sizes.size(); ++i) {
    const std::size_t B = g.sizes[i];
    const SizeSummary& s = res.sums.at({Norm::Batch, B});
    if (s.best.acc.empty()) {
      gap_table.push_back({std::to_string(B), "—", "—", "—", "—"});
      continue;
    }
    const double eval_acc = s.best.mean_acc(), gap = res.gap_by_size[i];
    gap_table.push_back({std::to_string(B), param_num(s.best_lr), short_num(eval_acc),
                         short_num(eval_acc - gap), short_num(gap)});
  }
  rep.paragraph(
      "BatchNorm at the end of training, at each batch size's best learning rate: test accuracy in eval "
      "mode (running statistics, how the model is deployed) and in training mode (each test batch of the "
      "training batch size normalized by its own statistics, as during training; the running statistics "
      "are saved and restored around this measurement).");
  rep.table({"batch size", "lr", "eval-mode acc", "train-mode acc", "eval − train"}, gap_table);
}

// The lr limits at the smallest and largest batch, and how far each norm's limit falls between them.
std::string reading_limits(const Grid& g, const Results& res) {
  const std::size_t b0 = g.sizes.front(), b1 = g.sizes.back();
  auto limit = [&](Norm n, std::size_t B) { return lr_or_dash(res.sums.at({n, B}).max_lr_no_div); };
  std::string text = "**Reading.** The largest learning rate at which no seed diverged is " +
                     limit(Norm::None, b0) + " / " + limit(Norm::Layer, b0) + " / " + limit(Norm::Batch, b0) +
                     " (no norm / LayerNorm / BatchNorm) at batch size " + std::to_string(b0) + " and " +
                     limit(Norm::None, b1) + " / " + limit(Norm::Layer, b1) + " / " + limit(Norm::Batch, b1) +
                     " at batch size " + std::to_string(b1) + ". ";
  std::string falls;
  for (Norm n : kNorms) {
    const double hi = res.sums.at({n, b1}).max_lr_no_div, lo = res.sums.at({n, b0}).max_lr_no_div;
    if (std::isnan(hi) || std::isnan(lo)) continue;
    falls += std::string(falls.empty() ? "" : ", ") + general(hi / lo, 3) + "× for " + norm_title(n);
  }
  if (!falls.empty()) {
    text += "From batch size " + std::to_string(b1) + " to " + std::to_string(b0) + " that limit falls " +
            falls + ". ";
  }
  return text;
}

// Accuracy: the norms compared at the smallest batch size where any of them learned.
std::string reading_accuracy(const Grid& g, const Results& res) {
  const std::size_t b0 = g.sizes.front(), b1 = g.sizes.back(), fl = res.first_learned;
  if (fl == 0) {
    return "None of the three reached " + short_num(100 * kLearned) +
           "% mean test accuracy at any batch size in " + std::to_string(g.steps) +
           " steps, so the accuracies compare models that did not learn the spirals "
           "and say nothing about normalization.";
  }
  std::string text;
  if (fl != b0) {
    text += "Below batch size " + std::to_string(fl) + " none of the three reached " +
            short_num(100 * kLearned) + "% mean test accuracy in " + std::to_string(g.steps) + " steps (" +
            std::to_string(g.steps * b0) + " examples seen at batch size " + std::to_string(b0) + ", " +
            short_num(static_cast<double>(g.steps * b0) / static_cast<double>(res.train_size), 2) +
            " epochs), so there only divergence tells them apart. ";
  }
  const double ln = res.sums.at({Norm::Layer, fl}).best_acc(), bn = res.sums.at({Norm::Batch, fl}).best_acc();
  const double no = res.sums.at({Norm::None, fl}).best_acc();
  const std::string verdict =
      fl == b1 && b1 != b0
          ? "only the largest batch size learned at all, so this says nothing about small batches"
      : bn < ln - 0.05
          ? "this agrees with the expectation that BatchNorm suffers from small batches while "
            "LayerNorm does not"
          : "this does not show the expected advantage of LayerNorm over BatchNorm at small batches";
  return text + "At batch size " + std::to_string(fl) +
         ", the smallest where one of them learned, the best mean test "
         "accuracy is " +
         short_num(no) + " (no norm), " + short_num(ln) + " (LayerNorm) and " + short_num(bn) +
         " (BatchNorm): " + verdict + " (best overall: " + short_num(res.best_overall) + " at " +
         res.best_where + "). ";
}

// BatchNorm's train/eval gap, where BatchNorm learned.
std::string reading_gap(const Grid& g, const Results& res) {
  std::string gaps;
  for (std::size_t i = 0; i < g.sizes.size(); ++i) {
    if (res.sums.at({Norm::Batch, g.sizes[i]}).best_acc() < kLearned || std::isnan(res.gap_by_size[i]))
      continue;
    gaps += std::string(gaps.empty() ? "" : ", ") + signed_fixed(100 * res.gap_by_size[i], 1) +
            " points at batch size " + std::to_string(g.sizes[i]);
  }
  return gaps.empty()
             ? "BatchNorm learned at no batch size, so its train/eval gap means little here."
             : "Where BatchNorm learned, its eval-mode minus training-mode test accuracy is " + gaps + ".";
}

void add_summary(const Grid& g, const Results& res, Summary& summary) {
  nlohmann::json by_norm = nlohmann::json::object();
  for (Norm n : kNorms) {
    nlohmann::json per_size = nlohmann::json::object();
    for (std::size_t B : g.sizes) {
      const SizeSummary& s = res.sums.at({n, B});
      per_size[std::to_string(B)] = {{"max_lr_no_divergence", s.max_lr_no_div},
                                     {"max_lr_stable", s.max_lr_stable},
                                     {"best_lr", s.best_lr},
                                     {"best_mean_test_acc", s.best_acc()}};
    }
    by_norm[norm_name(n)] = per_size;
  }
  summary["e4"] = {{"best_mean_test_acc", res.best_overall},
                   {"best_cell", res.best_where},
                   {"by_norm_and_batch", by_norm},
                   {"smallest_batch_where_a_norm_learned", res.first_learned},
                   {"batchnorm_eval_minus_train_acc_smallest_batch", res.gap_by_size.front()},
                   {"batchnorm_eval_minus_train_acc_largest_batch", res.gap_by_size.back()}};
}

void report(const Config& c, const Grid& g, const Results& res, Report& rep, Summary& summary) {
  rep.heading(2, "4. Training stability: MLP on two spirals");
  rep.paragraph(intro_text(g, res));
  report_heatmaps(c, g, res, rep);
  report_limits_table(g, res, rep);
  report_gap_table(g, res, rep);
  rep.paragraph(reading_limits(g, res) + reading_accuracy(g, res) + reading_gap(g, res));
  add_summary(g, res, summary);
}

}  // namespace

void experiment_mlp_stability(const Config& c, Report& rep, Summary& summary) {
  const Grid g = grid(c);
  const std::uint64_t data_seed = derive_seed(c.seed, 4);
  const auto data = tg::two_spirals<float>(kPerClass, kNoise, data_seed);
  const auto split = tg::train_test_split(data, 0.25, data_seed + 1);
  const auto rows = run_grid(c, g, split.first, split.second);
  Results res = aggregate(rows, g);
  res.train_size = split.first.size();
  res.test_size = split.second.size();
  report(c, g, res, rep, summary);
}

}  // namespace lab
