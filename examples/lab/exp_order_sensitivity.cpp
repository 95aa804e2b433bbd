// Experiment 6: sensitivity to the order of the training examples. Same data, same initial
// weights, same learning rate; only the shuffling seed changes. Plain SGD already depends on
// the order (each step's gradient comes from different examples); BatchNorm in training mode
// additionally changes its forward pass with the batch's composition. Does it add spread?
#include <algorithm>
#include <cmath>

#include "training.hpp"

namespace lab {

namespace {

const std::vector<Norm> kNorms = {Norm::None, Norm::Layer, Norm::Batch};
const std::vector<std::size_t> kSizes = {4, 32};
constexpr double kLr = 0.03, kMomentum = 0.9, kNoise = 0.2;
constexpr std::size_t kPoints = 1024;  // 768 train, 256 test
const std::vector<std::string> kMetrics = {"test_loss", "test_acc", "train_loss", "diverged",
                                           "test_acc_train_mode"};

struct Setup {
  std::size_t orders, steps;
  std::uint64_t init_seed;
};

// --- run -------------------------------------------------------------------------------------

Run make_run(const Config& c, const Setup& su, Norm n, std::size_t B, std::size_t o,
             const tg::Dataset<float>& train, const tg::Dataset<float>& test) {
  TrainConfig cfg;
  cfg.norm = n;
  cfg.hidden = {64, 64};
  cfg.batch_size = B;
  cfg.steps = su.steps;
  cfg.lr = kLr;
  cfg.momentum = kMomentum;
  cfg.init_seed = su.init_seed;
  cfg.order_seed = derive_seed(c.seed, 6, 2, o);  // the same orders for every norm
  cfg.eval_every = 0;
  Run run;
  run.key = std::string(norm_name(n)) + "/B" + std::to_string(B) + "/o" + std::to_string(o);
  run.params = sgd_params(cfg);
  run.params.insert(run.params.end(), {{"init_seed", std::to_string(su.init_seed)},
                                       {"order", std::to_string(o)},
                                       {"order_seed", std::to_string(cfg.order_seed)}});
  run.fn = classifier_fn(cfg, kMetrics, train, test);
  return run;
}

std::vector<Row> run_orders(const Config& c, const Setup& su, const tg::Dataset<float>& train,
                            const tg::Dataset<float>& test) {
  SweepSpec spec;
  spec.name = "e6_order_sensitivity";
  spec.param_cols = {"norm",   "batch_size", "lr",    "momentum",  "steps",
                     "hidden", "init_seed",  "order", "order_seed"};
  spec.metric_cols = kMetrics;
  for (Norm n : kNorms) {
    for (std::size_t B : kSizes) {
      for (std::size_t o = 0; o < su.orders; ++o) spec.runs.push_back(make_run(c, su, n, B, o, train, test));
    }
  }
  return run_sweep(spec, c.sweep(spec.name));
}

// --- aggregate -------------------------------------------------------------------------------

bool in_config(const Row& r, Norm n, std::size_t B) {
  return r.at("norm") == norm_name(n) && r.at("batch_size") == std::to_string(B);
}

struct Spread {
  Stats loss, acc;
  std::vector<double> order, test_loss;  // per run, for the plot
};

Spread spread(const std::vector<Row>& rows, Norm n, std::size_t B) {
  Spread s;
  std::vector<double> acc;
  for (const auto& r : rows) {
    if (!in_config(r, n, B)) continue;
    s.order.push_back(num(r, "order"));
    s.test_loss.push_back(num(r, "test_loss"));
    acc.push_back(num(r, "test_acc"));
  }
  s.loss = stats(s.test_loss);
  s.acc = stats(acc);
  return s;
}

// BatchNorm's spread against the larger of the other two, in loss and in accuracy, and its mean
// test loss against theirs.
struct Ratios {
  double loss, acc, mean_loss;
};

struct Results {
  std::size_t train_size = 0, test_size = 0;
  std::map<std::pair<Norm, std::size_t>, Spread> spreads;
  std::map<std::size_t, Ratios> ratios;  // by batch size
  double min_acc = 1;                    // lowest mean test accuracy of a configuration
};

Results aggregate(const std::vector<Row>& rows) {
  Results res;
  for (std::size_t B : kSizes) {
    for (Norm n : kNorms) {
      res.spreads[{n, B}] = spread(rows, n, B);
      res.min_acc = std::min(res.min_acc, res.spreads[{n, B}].acc.mean);
    }
    const Spread &no = res.spreads[{Norm::None, B}], &ln = res.spreads[{Norm::Layer, B}],
                 &bn = res.spreads[{Norm::Batch, B}];
    res.ratios[B] = Ratios{bn.loss.std / std::max(no.loss.std, ln.loss.std),
                           bn.acc.std / std::max(no.acc.std, ln.acc.std),
                           bn.loss.mean / std::max(no.loss.mean, ln.loss.mean)};
  }
  return res;
}

// --- report ----------------------------------------------------------------------------------

std::string intro_text(const Setup& su, const Results& res) {
  return "One dataset (sklearn-style two moons, " + std::to_string(kPoints) + " points, noise " +
         fixed(kNoise, 1) + "; " + std::to_string(res.train_size) + " for training, " +
         std::to_string(res.test_size) +
         " held out), one set of initial weights, one learning rate (SGD, momentum " + fixed(kMomentum, 1) +
         ", lr " + param_num(kLr) + ", " + std::to_string(su.steps) +
         " steps, MLP 2 → [64 → norm → tanh] × 2 → 2); only the shuffling seed changes, " +
         std::to_string(su.orders) +
         " orders per configuration, the same orders for every norm. The moons are used rather than the spirals of "
         "section 4 so that every configuration learns (here the lowest mean test accuracy of a configuration is " +
         short_num(res.min_acc) +
         ") and the spread is that of trained models, not of models still near chance. Every norm is sensitive to "
         "the order through SGD itself (each step's gradient comes from different examples); the question is whether "
         "BatchNorm, whose forward pass in training depends on which examples share a batch, adds to it. Data: "
         "`e6_order_sensitivity.csv`.";
}

void report_table(const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (std::size_t B : kSizes) {
    for (Norm n : kNorms) {
      const Spread& s = res.spreads.at({n, B});
      table.push_back({std::to_string(B), norm_title(n), short_num(s.loss.mean), short_num(s.loss.std),
                       short_num(s.loss.max - s.loss.min), short_num(s.acc.mean), short_num(s.acc.std),
                       short_num(s.acc.max - s.acc.min)});
    }
  }
  rep.table({"batch size", "norm", "test loss: mean", "std", "range", "test acc: mean", "std", "range"},
            table);
}

// One line per configuration: the final test loss of each order.
void report_plot(const Config& c, const Results& res, Report& rep) {
  LinePlot plot;
  plot.stem = "e6_order_sensitivity";
  plot.title = "Final test loss for each shuffling order (same data, same initial weights)";
  plot.xlabel = "order (shuffling seed index)";
  plot.ylabel = "test loss";
  for (std::size_t B : kSizes) {
    for (Norm n : kNorms) {
      Series s;
      s.title = std::string(norm_title(n)) + ", batch " + std::to_string(B);
      s.x = res.spreads.at({n, B}).order;
      s.y = res.spreads.at({n, B}).test_loss;
      plot.series.push_back(s);
    }
  }
  plot_lines(c.out, plot);
  rep.image("e6_order_sensitivity.png", "test loss per order");
}

// A ratio above kMoreRatio counts as "more" (with few orders a std is uncertain by tens of percent).
constexpr double kMoreRatio = 1.5;

std::string verdict(const Ratios& r) {
  const bool loss = r.loss > kMoreRatio, acc = r.acc > kMoreRatio;
  if (loss && acc) return "BatchNorm adds order sensitivity";
  if (loss) return "BatchNorm spreads more in test loss but not in test accuracy";
  if (acc) return "BatchNorm spreads more in test accuracy but not in test loss";
  return "no clear extra sensitivity from BatchNorm";
}

// BatchNorm against the larger of no norm's and LayerNorm's, per batch size: the numbers the
// Reading quotes.
void report_ratio_table(const Setup& su, const Results& res, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (std::size_t B : kSizes) {
    const Ratios& r = res.ratios.at(B);
    table.push_back({std::to_string(B), std::to_string(su.orders), fixed(r.loss, 2) + "×",
                     fixed(r.acc, 2) + "×", fixed(r.mean_loss, 1) + "×"});
  }
  rep.table({"batch size", "orders", "BatchNorm / others: test loss std", "test acc std", "mean test loss"},
            table);
}

std::string reading_text(const Setup& su, const Results& res) {
  std::string text =
      "**Reading.** BatchNorm's standard deviation across orders relative to the larger of no norm's "
      "and LayerNorm's (second table): ";
  std::vector<std::string> worse_fit;
  for (std::size_t B : kSizes) {
    const Ratios& r = res.ratios.at(B);
    text += "at batch size " + std::to_string(B) + ", " + fixed(r.loss, 2) + "× in test loss and " +
            fixed(r.acc, 2) + "× in test accuracy (" + verdict(r) + ")" + (B == kSizes.back() ? ". " : "; ");
    if (r.mean_loss > kMoreRatio)
      worse_fit.push_back(fixed(r.mean_loss, 1) + "× higher at batch size " + std::to_string(B));
  }
  if (!worse_fit.empty()) {
    text +=
        "BatchNorm's mean test loss is also " + worse_fit.front() +
        ", so part of a larger loss spread may come with its worse fit rather than with the order itself. ";
  }
  return text + "With " + std::to_string(su.orders) +
         " orders a standard deviation is itself uncertain by tens of percent.";
}

void add_summary(const Results& res, Summary& summary) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, s] : res.spreads) {
    out[std::string(norm_name(k.first)) + "_B" + std::to_string(k.second)] = {
        {"test_loss_std", s.loss.std},
        {"test_loss_range", s.loss.max - s.loss.min},
        {"test_acc_std", s.acc.std},
        {"test_acc_range", s.acc.max - s.acc.min}};
  }
  const Ratios &rs = res.ratios.at(kSizes.front()), &rl = res.ratios.at(kSizes.back());
  summary["e6"] = {{"spread", out},
                   {"batchnorm_loss_std_ratio_small_batch", rs.loss},
                   {"batchnorm_acc_std_ratio_small_batch", rs.acc},
                   {"batchnorm_loss_std_ratio_large_batch", rl.loss},
                   {"batchnorm_acc_std_ratio_large_batch", rl.acc}};
}

}  // namespace

void experiment_order_sensitivity(const Config& c, Report& rep, Summary& summary) {
  const Setup su{c.pick<std::size_t>(3, 5, 8), c.pick<std::size_t>(60, 500, 1500), derive_seed(c.seed, 6, 1)};
  const std::uint64_t data_seed = derive_seed(c.seed, 6);
  const auto data = tg::moons<float>(kPoints, kNoise, data_seed);
  const auto split = tg::train_test_split(data, 0.25, data_seed + 1);
  const auto rows = run_orders(c, su, split.first, split.second);
  Results res = aggregate(rows);
  res.train_size = split.first.size();
  res.test_size = split.second.size();

  rep.heading(2, "6. Sensitivity to the order of the examples");
  rep.paragraph(intro_text(su, res));
  report_table(res, rep);
  report_ratio_table(su, res, rep);
  report_plot(c, res, rep);
  rep.paragraph(reading_text(su, res));
  add_summary(res, summary);
}

}  // namespace lab
