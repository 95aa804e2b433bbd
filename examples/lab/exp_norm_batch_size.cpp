// Experiment 8: test error vs batch size for seven normalizations (the MLP version of Wu & He
// 2018, "Group Normalization", Fig. 1). An MLP 784 -> [64 -> norm -> tanh] x 2 -> 10 on a
// subset of MNIST, trained for the same number of epochs at every batch size, several seeds;
// test error in eval mode and, for the norms with batch statistics, in training mode.
#include <algorithm>
#include <cmath>

#include "training.hpp"

namespace lab {

namespace {

const std::vector<Norm> kNorms = {Norm::None,  Norm::Batch, Norm::BatchRenorm, Norm::GhostBatch,
                                  Norm::Group, Norm::Layer, Norm::RMS};
const std::vector<std::size_t> kHidden = {64, 64};
constexpr double kTestFraction = 0.25;
const std::vector<std::string> kMetrics = {
    "test_error", "test_error_train_mode", "test_loss", "train_error", "diverged", "steps_done"};

struct Setup {
  std::size_t per_class, epochs, seeds;
  std::vector<std::size_t> sizes;
  double base_lr;  // Adam's learning rate at batch size kBaseBatch
};
constexpr std::size_t kBaseBatch = 32;

Setup setup(const Config& c) {
  return Setup{c.pick<std::size_t>(30, 120, 400), c.pick<std::size_t>(1, 1, 2), c.pick<std::size_t>(2, 2, 3),
               c.pick<std::vector<std::size_t>>({2, 32}, {2, 8, 32, 128}, {2, 8, 32, 128}), 1e-3};
}

// Adam's learning rate at batch size B: the square-root scaling rule (Hoffer et al. 2017;
// Malladi et al. 2022 for Adam), base_lr at batch size kBaseBatch.
double lr_for(const Setup& su, std::size_t B) {
  return su.base_lr * std::sqrt(static_cast<double>(B) / static_cast<double>(kBaseBatch));
}

// --- run -------------------------------------------------------------------------------------

std::vector<std::pair<std::string, double>> run_metrics(const TrainResult& r) {
  return {{"test_error", 1 - r.test.accuracy},
          {"test_error_train_mode", 1 - r.test_acc_train_mode},  // NaN stays NaN
          {"test_loss", r.test.loss},
          {"train_error", 1 - r.train.accuracy},
          {"diverged", r.diverged ? 1.0 : 0.0},
          {"steps_done", static_cast<double>(r.steps_done)}};
}

Run make_run(const Config& c, const Setup& su, Norm n, std::size_t B, std::size_t s, const MnistSplit& data) {
  auto made = mnist_run(c, 8, MnistRunSpec{n, B, kHidden, lr_for(su, B), su.epochs, s}, data);
  TrainConfig& cfg = made.first;
  Run& run = made.second;
  run.params.emplace_back("steps", std::to_string(cfg.steps));
  run.fn = [cfg, &data] { return run_metrics(train_classifier(cfg, data.train(), data.test())); };
  return run;
}

std::vector<Row> run_all(const Config& c, const Setup& su, const MnistSplit& data) {
  SweepSpec spec;
  spec.name = "e8_norm_batch_size";
  spec.param_cols = {"norm",   "batch_size", "optimizer", "lr",   "epochs",    "steps",
                     "hidden", "train_size", "test_size", "seed", "init_seed", "order_seed"};
  spec.metric_cols = kMetrics;
  for (Norm n : kNorms) {
    for (std::size_t B : su.sizes) {
      for (std::size_t s = 0; s < su.seeds; ++s) spec.runs.push_back(make_run(c, su, n, B, s, data));
    }
  }
  return run_sweep(spec, c.sweep(spec.name));
}

// --- aggregate -------------------------------------------------------------------------------

struct Cell {
  Stats eval, train_mode;  // test error over the seeds
};
using Cells = std::map<std::pair<Norm, std::size_t>, Cell>;

Cells aggregate(const std::vector<Row>& rows, const Setup& su) {
  Cells cells;
  for (Norm n : kNorms) {
    for (std::size_t B : su.sizes) {
      std::vector<double> ev, tm;
      for (const auto& r : rows) {
        if (r.at("norm") != norm_name(n) || r.at("batch_size") != std::to_string(B)) continue;
        ev.push_back(num(r, "test_error"));
        tm.push_back(num(r, "test_error_train_mode"));
      }
      cells[{n, B}] = Cell{stats(ev), stats(tm)};
    }
  }
  return cells;
}

// --- report ----------------------------------------------------------------------------------

std::string sizes_text(const std::vector<std::size_t>& sizes) {
  std::string s;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    s += (i == 0 ? "" : i + 1 == sizes.size() ? " and " : ", ") + std::to_string(sizes[i]);
  return s;
}

std::string intro_text(const Setup& su, const MnistSplit& data) {
  const std::size_t n = data.train().size();
  return "The question that follows \"BatchNorm breaks at small batches\": what does the field use instead, and how "
         "much does each fix? The MLP version of Wu & He's figure (2018, \"Group Normalization\", Fig. 1). " +
         std::to_string(n) + " MNIST digits for training and " + std::to_string(data.test().size()) +
         " held out (a seeded split of " + std::to_string(su.per_class) +
         " per digit). MLP 784 → [64 → norm → tanh] × 2 → 10, float32, trained with Adam for **" +
         std::to_string(su.epochs) + " epoch" + (su.epochs == 1 ? "" : "s") + " at every batch size** (" +
         sizes_text(su.sizes) + "; batch size " + std::to_string(su.sizes.front()) + " makes " +
         std::to_string((n / su.sizes.front()) / std::max<std::size_t>(1, n / su.sizes.back())) +
         "× the updates of batch size " + std::to_string(su.sizes.back()) + "), learning rate " +
         param_num(su.base_lr) + " × sqrt(B / " + std::to_string(kBaseBatch) +
         ") (the square-root scaling rule for Adam), " + std::to_string(su.seeds) +
         " seeds (initial weights, the same for every norm and batch size, and shuffling). The norms: BatchNorm1d; "
         "BatchRenorm1d (Ioffe 2017) with the paper's warm-up scaled to the run (r_max = 1, d_max = 0 for the "
         "first 10% of the steps, then d_max rising to 5 at 50% and r_max to 3 at 80%); GhostBatchNorm1d "
         "(Hoffer et al. 2017) with ghost batches of " +
         std::to_string(kGhostVirtualBatch) + " (so it *is* BatchNorm at batch sizes up to " +
         std::to_string(kGhostVirtualBatch) + "); GroupNorm with " + std::to_string(kGroupNormGroups) +
         " groups of " + std::to_string(kHidden.front() / kGroupNormGroups) +
         " features; LayerNorm; RMSNorm. Test error in eval mode (running statistics); for the three norms with "
         "batch statistics also in training mode (test batches of the training batch size normalized by their "
         "own statistics). Data: `e8_norm_batch_size.csv`.";
}

std::string cell_text(const Stats& s) {
  return short_num(s.mean) + " (" + short_num(s.min) + " – " + short_num(s.max) + ")";
}

void report_table(const Setup& su, const Cells& cells, Report& rep) {
  std::vector<std::string> header = {"norm"};
  for (std::size_t B : su.sizes) header.push_back("batch " + std::to_string(B));
  std::vector<std::vector<std::string>> table;
  for (Norm n : kNorms) {
    std::vector<std::string> row = {norm_title(n)};
    for (std::size_t B : su.sizes) row.push_back(cell_text(cells.at({n, B}).eval));
    table.push_back(row);
  }
  for (Norm n : kNorms) {
    if (!uses_batch_statistics(n)) continue;
    std::vector<std::string> row = {std::string(norm_title(n)) + ", train mode"};
    for (std::size_t B : su.sizes) row.push_back(cell_text(cells.at({n, B}).train_mode));
    table.push_back(row);
  }
  rep.paragraph("Test error, mean over the seeds (min – max):");
  rep.table(header, table);
}

void report_plot(const Config& c, const Setup& su, const Cells& cells, Report& rep) {
  LinePlot plot;
  plot.stem = "e8_norm_batch_size";
  plot.title = "MNIST MLP, " + std::to_string(su.epochs) + (su.epochs == 1 ? " epoch" : " epochs") +
               " at every batch size (band: min-max over seeds)";
  plot.xlabel = "batch size (log2 scale)";
  plot.ylabel = "test error (eval mode)";
  plot.logx = true;
  plot.key = "inside right top";  // the small-batch rise is at the left; the right top is empty
  for (Norm n : kNorms) {
    Series s;
    s.title = norm_title(n);
    if (n == Norm::GhostBatch) {  // drawn dashed over BatchNorm's line where they are the same
      s.title += " (= BN at B ≤ " + std::to_string(kGhostVirtualBatch) + ")";
      s.dashed = true;
    }
    for (std::size_t B : su.sizes) {
      const Stats& st = cells.at({n, B}).eval;
      s.x.push_back(static_cast<double>(B));
      s.y.push_back(st.mean);
      s.lo.push_back(st.min);
      s.hi.push_back(st.max);
    }
    plot.series.push_back(s);
  }
  plot_lines(c.out, plot);
  rep.image("e8_norm_batch_size.png", "test error vs batch size, one line per norm");
}

// "BatchNorm 0.05 → 0.31": a norm's mean eval-mode error at the largest and the smallest batch.
std::string from_to(const Setup& su, const Cells& cells, Norm n) {
  return std::string(norm_title(n)) + " " + short_num(cells.at({n, su.sizes.back()}).eval.mean) + " → " +
         short_num(cells.at({n, su.sizes.front()}).eval.mean);
}

std::string reading_text(const Setup& su, const Cells& cells) {
  const std::size_t b0 = su.sizes.front(), b1 = su.sizes.back();
  auto rise = [&](Norm n) { return cells.at({n, b0}).eval.mean - cells.at({n, b1}).eval.mean; };
  std::string batch_stats, independent;
  double min_bs_rise = 1e9, max_ind_rise = -1e9;
  for (Norm n : kNorms) {
    std::string& list = uses_batch_statistics(n) ? batch_stats : independent;
    list += (list.empty() ? "" : ", ") + from_to(su, cells, n);
    if (uses_batch_statistics(n))
      min_bs_rise = std::min(min_bs_rise, rise(n));
    else
      max_ind_rise = std::max(max_ind_rise, rise(n));
  }
  Norm best = kNorms.front();
  for (Norm n : kNorms) {
    if (cells.at({n, b0}).eval.mean < cells.at({best, b0}).eval.mean) best = n;
  }
  std::string text = "**Reading.** From batch size " + std::to_string(b1) + " to " + std::to_string(b0) +
                     ", the mean test error (eval mode) goes " + batch_stats +
                     " for the norms with batch statistics, and " + independent + " for the others. ";
  text += "At batch size " + std::to_string(b0) + " the lowest error is " + norm_title(best) + "'s (" +
          short_num(cells.at({best, b0}).eval.mean) + "); in training mode, on test batches of " +
          std::to_string(b0) + ", BatchNorm's error is " +
          short_num(cells.at({Norm::Batch, b0}).train_mode.mean) + " and BatchRenorm's " +
          short_num(cells.at({Norm::BatchRenorm, b0}).train_mode.mean) + ". ";
  if (min_bs_rise > max_ind_rise)
    text +=
        "Every norm with batch statistics loses more to the small batch than any of the others, the "
        "pattern of Wu & He's figure of error against batch size.";
  else
    text +=
        "The norms with batch statistics do NOT all lose more to the small batch than the others at this "
        "scale (the pattern of Wu & He's figure of error against batch size is not reproduced here); the "
        "numbers above are what was measured.";
  return text;
}

void add_summary(const Setup& su, const MnistSplit& data, const Cells& cells, Summary& summary) {
  nlohmann::json eval = nlohmann::json::object(), train_mode = nlohmann::json::object();
  for (Norm n : kNorms) {
    for (std::size_t B : su.sizes) {
      const std::string k = std::string(norm_name(n)) + "_B" + std::to_string(B);
      eval[k] = cells.at({n, B}).eval.mean;
      if (uses_batch_statistics(n)) train_mode[k] = cells.at({n, B}).train_mode.mean;
    }
  }
  summary["e8"] = {{"available", true},
                   {"epochs", su.epochs},
                   {"seeds", su.seeds},
                   {"batch_sizes", su.sizes},
                   {"train_size", data.train().size()},
                   {"test_size", data.test().size()},
                   {"ghost_virtual_batch", kGhostVirtualBatch},
                   {"group_norm_groups", kGroupNormGroups},
                   {"test_error", eval},
                   {"test_error_train_mode", train_mode}};
}

}  // namespace

void experiment_norm_batch_size(const Config& c, Report& rep, Summary& summary) {
  rep.heading(2, "8. MNIST: test error vs batch size for seven normalizations");
  const Setup su = setup(c);
  const auto loaded =
      load_mnist_split(c, su.per_class, kTestFraction, derive_seed(c.seed, 8), "e8", rep, summary);
  if (!loaded) return;
  const MnistSplit& data = *loaded;
  const auto rows = run_all(c, su, data);
  const Cells cells = aggregate(rows, su);
  rep.paragraph(intro_text(su, data));
  report_plot(c, su, cells, rep);
  report_table(su, cells, rep);
  rep.paragraph(reading_text(su, cells));
  add_summary(su, data, cells, summary);
}

}  // namespace lab
