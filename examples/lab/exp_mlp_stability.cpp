// Experiment 4: training stability of an MLP on two spirals over norm x batch size x learning
// rate, with several seeds per cell. Every run sees the same number of training examples (the
// same epochs), so a batch of 2 makes 64 times the updates of a batch of 128. The spirals turn
// once (tg::two_spirals turns twice): on two turns no norm learned below batch size 32 within
// a 3000-step budget, nor at any batch size within 32 epochs, so the section could not show in
// accuracy what happens at small batches.
#include <algorithm>
#include <cmath>

#include "training.hpp"

namespace lab {

namespace {

const std::vector<Norm> kNorms = {Norm::None, Norm::Layer, Norm::Batch};
constexpr double kMomentum = 0.9;
constexpr double kTarget = 0.9;    // accuracy whose first reaching is epochs_to_target
constexpr double kLearned = 0.75;  // "stable" needs this mean test accuracy: halfway from chance to perfect
constexpr std::size_t kPerClass = 512;  // 1024 points: 768 train, 256 test
constexpr double kTestFraction = 0.25;
constexpr double kNoise = 0.03;
constexpr double kTurns = 1;            // turns of each spiral arm
constexpr std::size_t kSmallBatch = 8;  // the Reading's "small batch sizes": up to this
const std::vector<std::size_t> kHidden = {64, 64};

struct Grid {
  std::vector<std::size_t> sizes;
  std::vector<double> lrs;
  std::size_t seeds, epochs;
};

Grid grid(const Config& c) {
  Grid g;
  g.sizes = c.pick<std::vector<std::size_t>>({2, 8}, {2, 4, 8, 32, 128}, {2, 4, 8, 32, 128});
  g.lrs = c.pick<std::vector<double>>({0.01, 0.1, 3}, {0.01, 0.03, 0.3}, {0.003, 0.01, 0.03, 0.1, 0.3, 1, 3});
  g.seeds = c.pick<std::size_t>(2, 2, 3);
  g.epochs = c.pick<std::size_t>(1, 24, 32);
  return g;
}

// Optimizer steps of a run at batch size B: the same epochs at every batch size (drop_last).
std::size_t steps_for(const Grid& g, std::size_t train_size, std::size_t B) {
  return g.epochs * (train_size / B);
}

const std::vector<std::string> kMetrics = {"test_acc",         "test_loss",          "train_loss",
                                           "last_window_loss", "diverged",           "steps_done",
                                           "steps_to_target",  "test_acc_train_mode"};

// Two interleaved spirals, `turns` turns each: point i of n at radius t = (i + 1) / n and angle
// 2 pi turns t, the second class mirrored through the origin, plus N(0, noise^2) on each
// coordinate. tg::two_spirals is this with 2 turns (its own random draws).
tg::Dataset<float> spirals(std::size_t per_class, double turns, double noise, std::uint64_t seed) {
  constexpr double kPi = 3.14159265358979323846;
  tg::Generator gen(seed);
  xt::xarray<float> x = xt::xarray<float>::from_shape({2 * per_class, 2});
  std::vector<std::int64_t> y(2 * per_class);
  for (std::size_t k = 0; k < 2; ++k) {
    const double sign = k == 0 ? 1.0 : -1.0;
    for (std::size_t i = 0; i < per_class; ++i) {
      const double t = static_cast<double>(i + 1) / static_cast<double>(per_class),
                   theta = 2 * kPi * turns * t;
      const std::size_t row = k * per_class + i;
      x(row, 0) = static_cast<float>(sign * t * std::cos(theta) + gen.normal(0, noise));
      x(row, 1) = static_cast<float>(sign * t * std::sin(theta) + gen.normal(0, noise));
      y[row] = static_cast<std::int64_t>(k);
    }
  }
  return tg::Dataset<float>(std::move(x), std::move(y));
}

// --- run -------------------------------------------------------------------------------------

// One seed of one (norm, batch size, lr) cell; the seed fixes the same initial weights for
// every norm, size and lr. Test accuracy is measured after every epoch.
Run make_run(const Config& c, const Grid& g, Norm n, std::size_t B, double lr, std::size_t s,
             const tg::Dataset<float>& train, const tg::Dataset<float>& test) {
  TrainConfig cfg;
  cfg.norm = n;
  cfg.hidden = kHidden;
  cfg.batch_size = B;
  cfg.steps = steps_for(g, train.size(), B);
  cfg.lr = lr;
  cfg.momentum = kMomentum;
  cfg.init_seed = derive_seed(c.seed, 4, s, 1);
  cfg.order_seed = derive_seed(c.seed, 4, s, 2);
  cfg.eval_every = train.size() / B;
  cfg.target_acc = kTarget;
  Run run;
  run.key =
      std::string(norm_name(n)) + "/B" + std::to_string(B) + "/lr" + param_num(lr) + "/s" + std::to_string(s);
  run.params = sgd_params(cfg);
  run.params.insert(run.params.end(), {{"epochs", std::to_string(g.epochs)},
                                       {"train_size", std::to_string(train.size())},
                                       {"seed", std::to_string(s)},
                                       {"init_seed", std::to_string(cfg.init_seed)},
                                       {"order_seed", std::to_string(cfg.order_seed)}});
  run.fn = classifier_fn(cfg, kMetrics, train, test);
  return run;
}

std::vector<Row> run_grid(const Config& c, const Grid& g, const tg::Dataset<float>& train,
                          const tg::Dataset<float>& test) {
  SweepSpec spec;
  spec.name = "e4_mlp_stability";
  spec.param_cols = {"norm",   "batch_size", "lr",   "momentum",  "epochs",    "steps",
                     "hidden", "train_size", "seed", "init_seed", "order_seed"};
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
  std::vector<double> acc, train_mode_acc, epochs_to_target;
  double diverged = 0;  // fraction of seeds
  double mean_acc() const { return stats(acc).mean; }
};

Cell cell(const std::vector<Row>& rows, const Grid& g, Norm n, std::size_t B, double lr) {
  Cell c;
  for (const auto& r : rows) {
    if (r.at("norm") != norm_name(n) || r.at("batch_size") != std::to_string(B) ||
        r.at("lr") != param_num(lr))
      continue;
    c.acc.push_back(num(r, "test_acc"));
    c.train_mode_acc.push_back(num(r, "test_acc_train_mode"));
    const double steps_per_epoch = num(r, "steps") / static_cast<double>(g.epochs);
    c.epochs_to_target.push_back(num(r, "steps_to_target") / steps_per_epoch);  // NaN stays NaN
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
  bool learned() const { return best_acc() >= kLearned; }
};

SizeSummary summarize(const std::vector<Row>& rows, const Grid& g, Norm n, std::size_t B) {
  SizeSummary s;
  double best_acc = -1;
  for (double lr : g.lrs) {
    const Cell c = cell(rows, g, n, B, lr);
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

// BatchNorm at one batch size's best lr: test accuracy in eval and in training mode, and the
// table's strings for them (the Reading quotes these strings).
struct BatchNormModes {
  double eval = std::nan(""), train = std::nan("");
  std::string eval_text() const { return short_num(eval); }
  std::string train_text() const { return short_num(train); }
  std::string gap_text() const { return short_num(eval - train); }
};

struct Results {
  std::size_t train_size = 0, test_size = 0;
  std::map<Norm, NormGrids> grids;
  std::map<std::pair<Norm, std::size_t>, SizeSummary> sums;
  std::map<std::size_t, BatchNormModes> bn_modes;
  double best_overall = 0;
  std::string best_where;
};

NormGrids norm_grids(const std::vector<Row>& rows, const Grid& g, Norm n) {
  NormGrids out;
  for (double lr : g.lrs) {
    std::vector<double> za, zd;
    for (std::size_t B : g.sizes) {
      const Cell cl = cell(rows, g, n, B, lr);
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
    if (!s.best.acc.empty()) res.bn_modes[B] = {s.best.mean_acc(), stats(s.best.train_mode_acc).mean};
  }
  find_best(res);
  return res;
}

// The batch sizes the Reading calls small: up to kSmallBatch (at least the smallest).
std::vector<std::size_t> small_sizes(const Grid& g) {
  std::vector<std::size_t> out;
  for (std::size_t B : g.sizes) {
    if (B <= kSmallBatch) out.push_back(B);
  }
  if (out.empty()) out.push_back(g.sizes.front());
  return out;
}

// --- report ----------------------------------------------------------------------------------

std::string lr_or_dash(double lr) { return std::isnan(lr) ? "—" : param_num(lr); }

std::string epochs_text(const Cell& c) {
  std::size_t reached = 0;
  for (double e : c.epochs_to_target) reached += !std::isnan(e);
  if (reached == 0) return "never";
  return short_num(stats(c.epochs_to_target).mean) + " (" + std::to_string(reached) + "/" +
         std::to_string(c.epochs_to_target.size()) + ")";
}

// "2, 4 and 8"; with a separator, "2 / 4 / 8".
std::string sizes_text(const std::vector<std::size_t>& sizes, const char* sep = nullptr) {
  std::string s;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    s += (i == 0 ? "" : sep ? sep : i + 1 == sizes.size() ? " and " : ", ") + std::to_string(sizes[i]);
  return s;
}

// "batch size 2", "batch sizes 2 and 4"
std::string batch_sizes_text(const std::vector<std::size_t>& sizes, const char* sep = nullptr) {
  return (sizes.size() == 1 ? "batch size " : "batch sizes ") + sizes_text(sizes, sep);
}

std::string epochs_word(std::size_t epochs) {
  return std::to_string(epochs) + (epochs == 1 ? " epoch" : " epochs");
}

std::string intro_text(const Grid& g, const Results& res) {
  const std::size_t b0 = g.sizes.front(), b1 = g.sizes.back(), n = res.train_size;
  return "An MLP 2 → [64 → norm → tanh] × 2 → 2 (float32) learns two interleaved spirals of one turn each (" +
         std::to_string(2 * kPerClass) + " points, noise " + fixed(kNoise, 2) + "; " + std::to_string(n) +
         " for training, " + std::to_string(res.test_size) + " held out), trained by SGD with momentum " +
         fixed(kMomentum, 1) + " on cross-entropy for **" + epochs_word(g.epochs) +
         " at every batch size** (" + sizes_text(g.sizes) + "): every run sees the same " +
         std::to_string(g.epochs * n) + " training examples, so batch size " + std::to_string(b0) +
         " makes " + std::to_string(steps_for(g, n, b0)) + " updates and batch size " + std::to_string(b1) +
         " " + std::to_string(steps_for(g, n, b1)) +
         ". Held constant: the data, the examples seen, the network and its initial weights (a seed fixes them, "
         "the same for every norm, batch size and learning rate, and the shuffling order), the optimizer and the "
         "grid of learning rates, from which each batch size gets its best. Why this design: with a budget in "
         "steps, a batch of 2 would see 64 times fewer examples than a batch of 128 and fail from too little "
         "data rather than from its batch size; and on spirals of two turns no norm learns at small batch sizes "
         "in a budget this lab can afford, so the section could not show in accuracy that LayerNorm keeps "
         "learning at small batches while BatchNorm does not. " +
         std::to_string(g.seeds) +
         " seeds per cell. A run **diverged** when a step's loss was NaN/Inf or the mean loss over " +
         std::to_string(TrainConfig().window) +
         " steps exceeded 10 × ln 2 (10 × the loss of a uniform guess); it stops there, and its test accuracy is "
         "measured on the weights it stopped with (non-finite outputs count as wrong). Test accuracy is measured in "
         "eval mode after every epoch (for the epochs to reach " +
         fixed(100 * kTarget, 0) + "%) and at the end. Data: `e4_mlp_stability.csv`.";
}

// Heatmaps: rows = lr (smallest at the bottom), columns = batch size, one panel per norm.
void report_heatmaps(const Config& c, const Grid& g, const Results& res, Report& rep) {
  std::vector<Heatmap> acc_panels, div_panels;
  for (Norm n : kNorms) {
    Heatmap a;
    a.title = std::string(norm_title(n)) + ": mean test accuracy";
    a.xlabel = "batch size (" + epochs_word(g.epochs) + " each)";
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

std::vector<std::string> limits_row(const Grid& g, const Results& res, Norm n, std::size_t B) {
  const SizeSummary& s = res.sums.at({n, B});
  const bool none = s.best.acc.empty();
  const Stats st = none ? Stats{} : stats(s.best.acc);
  return {norm_title(n),
          std::to_string(B),
          std::to_string(steps_for(g, res.train_size, B)),
          lr_or_dash(s.max_lr_no_div),
          lr_or_dash(s.max_lr_stable),
          none ? "—" : short_num(s.best.mean_acc()) + " (lr " + param_num(s.best_lr) + ")",
          none ? "—" : short_num(st.min) + " – " + short_num(st.max),
          none ? "—" : epochs_text(s.best)};
}

// Per norm and batch size, the lr limits and the best cell.
void report_limits_table(const Grid& g, const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (Norm n : kNorms) {
    for (std::size_t B : g.sizes) table.push_back(limits_row(g, res, n, B));
  }
  rep.paragraph(
      "Largest learning rate per norm and batch size. **Stable** = no seed diverged *and* the mean test "
      "accuracy is at least " +
      short_num(100 * kLearned) +
      "% (halfway from chance to perfect); \"no divergence\" drops the accuracy condition. The best cell is the "
      "non-diverging learning rate with the highest mean test accuracy; its epochs to " +
      short_num(100 * kTarget) + "% are averaged over the seeds that reached it.");
  rep.table(
      {"norm", "batch size", "steps", "largest lr, no divergence", "largest stable lr", "best mean test acc",
       "min – max over seeds", "epochs to " + short_num(100 * kTarget) + "% (seeds)"},
      table);
}

// BatchNorm: test accuracy in eval mode (running statistics) vs training mode (statistics of
// each test batch of the training batch size), at the best lr of each batch size.
void report_gap_table(const Grid& g, const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> gap_table;
  for (std::size_t B : g.sizes) {
    const auto it = res.bn_modes.find(B);
    if (it == res.bn_modes.end()) {
      gap_table.push_back({std::to_string(B), "—", "—", "—", "—"});
      continue;
    }
    const BatchNormModes& m = it->second;
    gap_table.push_back({std::to_string(B), param_num(res.sums.at({Norm::Batch, B}).best_lr), m.eval_text(),
                         m.train_text(), m.gap_text()});
  }
  rep.paragraph(
      "BatchNorm at the end of training, at each batch size's best learning rate: test accuracy in eval "
      "mode (running statistics, how the model is deployed) and in training mode (each test batch of the "
      "training batch size normalized by its own statistics, as during training; the running statistics "
      "are saved and restored around this measurement).");
  rep.table({"batch size", "lr", "eval-mode acc", "train-mode acc", "eval − train"}, gap_table);
}

// "0.92 / 0.96 / 0.95": a norm's best mean test accuracy at each of `sizes`, as in the table.
std::string accs_text(const Results& res, Norm n, const std::vector<std::size_t>& sizes) {
  std::string s;
  for (std::size_t B : sizes) s += (s.empty() ? "" : " / ") + short_num(res.sums.at({n, B}).best_acc());
  return s;
}

// Accuracy at the small batch sizes, with the same examples seen, and at the largest.
std::string reading_accuracy(const Grid& g, const Results& res) {
  const std::vector<std::size_t> small = small_sizes(g);
  const std::size_t b1 = g.sizes.back();
  std::string text = "**Reading.** With the same " + epochs_word(g.epochs) +
                     " at every batch size, the best mean test accuracy at " +
                     batch_sizes_text(small, " / ") + " is " + accs_text(res, Norm::None, small) +
                     " with no norm, " + accs_text(res, Norm::Layer, small) + " with LayerNorm and " +
                     accs_text(res, Norm::Batch, small) + " with BatchNorm";
  if (b1 > small.back()) {
    text += "; at batch size " + std::to_string(b1) + " it is " + accs_text(res, Norm::None, {b1}) + ", " +
            accs_text(res, Norm::Layer, {b1}) + " and " + accs_text(res, Norm::Batch, {b1});
  }
  text += ". ";
  std::vector<std::size_t> bn_failed, ln_failed, none_failed;
  for (std::size_t B : small) {
    if (!res.sums.at({Norm::Batch, B}).learned()) bn_failed.push_back(B);
    if (!res.sums.at({Norm::Layer, B}).learned()) ln_failed.push_back(B);
    if (!res.sums.at({Norm::None, B}).learned()) none_failed.push_back(B);
  }
  if (!ln_failed.empty())
    return text + "LayerNorm did not learn (no stable learning rate) at " + batch_sizes_text(ln_failed) +
           ", so this run cannot show it keeping its accuracy at small batches. ";
  text += "LayerNorm learns at every one of these small batch sizes" +
          std::string(none_failed.empty() ? ", and so does the net without normalization; "
                                          : " (the net without normalization does not at " +
                                                batch_sizes_text(none_failed) + "); ");
  return text + (bn_failed.empty()
                     ? "BatchNorm learns there too, so this run does not show BatchNorm failing "
                       "at small batches in eval-mode accuracy. "
                     : "BatchNorm does not (no stable learning rate) at " + batch_sizes_text(bn_failed) +
                           ": the small-batch failure of BatchNorm, seen in accuracy. ");
}

// The lr limits at the smallest and largest batch, and for which norms the limit is lower at the smallest.
std::string reading_limits(const Grid& g, const Results& res) {
  const std::size_t b0 = g.sizes.front(), b1 = g.sizes.back();
  auto limit = [&](Norm n, std::size_t B) { return lr_or_dash(res.sums.at({n, B}).max_lr_no_div); };
  std::string lower;
  std::size_t n_lower = 0;
  for (Norm n : kNorms) {
    const double lo = res.sums.at({n, b0}).max_lr_no_div, hi = res.sums.at({n, b1}).max_lr_no_div;
    if (!(std::isnan(lo) && !std::isnan(hi)) && !(lo < hi)) continue;  // no limit at b0 counts as lower
    lower += std::string(lower.empty() ? "" : ", ") + norm_title(n);
    ++n_lower;
  }
  std::string text = "The largest learning rate at which no seed diverged is " + limit(Norm::None, b0) +
                     " / " + limit(Norm::Layer, b0) + " / " + limit(Norm::Batch, b0) +
                     " (no norm / LayerNorm / BatchNorm) at batch size " + std::to_string(b0) + " and " +
                     limit(Norm::None, b1) + " / " + limit(Norm::Layer, b1) + " / " + limit(Norm::Batch, b1) +
                     " at batch size " + std::to_string(b1);
  if (b0 == b1) return text + ". ";
  if (n_lower == kNorms.size())
    return text + ": the small batch diverges at smaller learning rates for every norm. ";
  return text + (n_lower == 0 ? ": for no norm is it lower at the small batch. "
                              : ": it is lower at the small batch for " + lower + " only. ");
}

// BatchNorm's two modes at the small batch sizes.
std::string reading_modes(const Grid& g, const Results& res) {
  std::string train, gaps;
  std::vector<std::size_t> sizes;
  for (std::size_t B : small_sizes(g)) {
    const auto it = res.bn_modes.find(B);
    if (it == res.bn_modes.end()) continue;
    sizes.push_back(B);
    train += (train.empty() ? "" : " / ") + it->second.train_text();
    gaps += (gaps.empty() ? "" : " / ") + it->second.gap_text();
  }
  if (sizes.empty()) return "";
  return "Evaluated in training mode (test batches of the training batch size), BatchNorm's accuracy at " +
         batch_sizes_text(sizes, " / ") + " is " + train + " (eval − train: " + gaps + ").";
}

nlohmann::json size_json(const Grid& g, const Results& res, Norm n, std::size_t B) {
  const SizeSummary& s = res.sums.at({n, B});
  nlohmann::json j = {{"steps", steps_for(g, res.train_size, B)}, {"max_lr_no_divergence", s.max_lr_no_div},
                      {"max_lr_stable", s.max_lr_stable},         {"best_lr", s.best_lr},
                      {"best_mean_test_acc", s.best_acc()},       {"learned", s.learned()}};
  if (n == Norm::Batch && res.bn_modes.count(B))
    j["best_mean_test_acc_train_mode"] = res.bn_modes.at(B).train;
  return j;
}

void add_summary(const Grid& g, const Results& res, Summary& summary) {
  nlohmann::json by_norm = nlohmann::json::object();
  for (Norm n : kNorms) {
    nlohmann::json per_size = nlohmann::json::object();
    for (std::size_t B : g.sizes) per_size[std::to_string(B)] = size_json(g, res, n, B);
    by_norm[norm_name(n)] = per_size;
  }
  summary["e4"] = {{"epochs", g.epochs},
                   {"turns", kTurns},
                   {"train_size", res.train_size},
                   {"batch_sizes", g.sizes},
                   {"small_batch_sizes", small_sizes(g)},
                   {"best_mean_test_acc", res.best_overall},
                   {"best_cell", res.best_where},
                   {"by_norm_and_batch", by_norm}};
}

void report(const Config& c, const Grid& g, const Results& res, Report& rep, Summary& summary) {
  rep.heading(2, "4. Training stability: MLP on two spirals");
  rep.paragraph(intro_text(g, res));
  report_heatmaps(c, g, res, rep);
  report_limits_table(g, res, rep);
  report_gap_table(g, res, rep);
  rep.paragraph(reading_accuracy(g, res) + reading_limits(g, res) + reading_modes(g, res));
  add_summary(g, res, summary);
}

}  // namespace

void experiment_mlp_stability(const Config& c, Report& rep, Summary& summary) {
  const Grid g = grid(c);
  const std::uint64_t data_seed = derive_seed(c.seed, 4);
  const auto data = spirals(kPerClass, kTurns, kNoise, data_seed);
  const auto split = tg::train_test_split(data, kTestFraction, data_seed + 1);
  const auto rows = run_grid(c, g, split.first, split.second);
  Results res = aggregate(rows, g);
  res.train_size = split.first.size();
  res.test_size = split.second.size();
  report(c, g, res, rep, summary);
}

}  // namespace lab
