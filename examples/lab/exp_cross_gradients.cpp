// Experiment 2: cross-example gradients. With the tape we compute the Jacobian blocks
// d output_i / d input_j of a whole batch. A network that treats examples independently has
// zero blocks for i != j; BatchNorm in training mode couples every pair through the batch
// statistics.
#include <algorithm>
#include <cmath>
#include <fstream>

#include "lab.hpp"

namespace lab {

namespace {

constexpr std::size_t kIn = 16, kOut = 4;
const std::vector<std::size_t> kHidden = {32, 32};

struct Variant {
  const char* name;
  const char* title;
  Norm norm;
  bool eval;
};
const std::vector<Variant> kVariants = {{"none", "no norm", Norm::None, false},
                                        {"layer", "LayerNorm", Norm::Layer, false},
                                        {"batch_train", "BatchNorm (train mode)", Norm::Batch, false},
                                        {"batch_eval", "BatchNorm (eval mode)", Norm::Batch, true}};

// block[i][j] = || d y_i / d x_j ||_F over a batch of B, by one backward pass per output entry.
std::vector<std::vector<double>> jacobian_blocks(const Variant& v, std::size_t B, std::uint64_t seed) {
  auto net = examples::make_mlp<float>(kIn, kHidden, kOut, norm_name(v.norm), seed);
  if (v.eval) net->eval();
  tg::Generator gen(seed + 3);
  const auto X = tg::normal_array<float>({B, kIn}, 0, 1, gen);
  std::vector<std::vector<double>> block(B, std::vector<double>(B, 0.0));
  tg::Tape<float> t;
  xt::xarray<float> up = xt::zeros<float>({B, kOut});
  for (std::size_t i = 0; i < B; ++i) {
    for (std::size_t k = 0; k < kOut; ++k) {
      t.reset();
      auto x = t.input(X, true);
      auto y = net->forward(t, x);
      up(i, k) = 1;
      t.backward(y, up);
      up(i, k) = 0;
      const auto& g = t.grad(x);
      for (std::size_t j = 0; j < B; ++j) {
        for (std::size_t d = 0; d < kIn; ++d) block[i][j] += static_cast<double>(g(j, d)) * g(j, d);
      }
    }
  }
  for (auto& row : block) {
    for (auto& b : row) b = std::sqrt(b);
  }
  return block;
}

// --- run -------------------------------------------------------------------------------------

// The largest and mean off-diagonal block norm and the mean diagonal one, of one batch.
std::vector<std::pair<std::string, double>> block_metrics(const std::vector<std::vector<double>>& blk) {
  const std::size_t B = blk.size();
  double off_max = 0, off_sum = 0, diag = 0;
  for (std::size_t i = 0; i < B; ++i) {
    for (std::size_t j = 0; j < B; ++j) {
      if (i == j) {
        diag += blk[i][j];
      } else {
        off_max = std::max(off_max, blk[i][j]);
        off_sum += blk[i][j];
      }
    }
  }
  const double nb = static_cast<double>(B);
  return {{"offdiag_max", off_max}, {"offdiag_mean", off_sum / (nb * (nb - 1))}, {"diag_mean", diag / nb}};
}

std::vector<Row> run_sizes(const Config& c, const std::vector<std::size_t>& sizes) {
  SweepSpec spec;
  spec.name = "e2_cross_gradients";
  spec.param_cols = {"norm", "batch_size", "seed"};
  spec.metric_cols = {"offdiag_max", "offdiag_mean", "diag_mean"};
  for (const auto& v : kVariants) {
    for (std::size_t B : sizes) {
      Run run;
      run.key = std::string(v.name) + "/B" + std::to_string(B);
      run.params = {{"norm", v.name}, {"batch_size", std::to_string(B)}, {"seed", std::to_string(c.seed)}};
      run.fn = [v, B, seed = c.seed] { return block_metrics(jacobian_blocks(v, B, seed)); };
      spec.runs.push_back(std::move(run));
    }
  }
  return run_sweep(spec, c.sweep("e2_cross_gradients"));
}

// The batch x batch blocks of every variant at one batch size, for the picture; also kept as
// CSV next to it.
std::vector<std::vector<std::vector<double>>> picture_blocks(const Config& c, std::size_t hb) {
  std::ofstream hcsv;  // under mpirun: rank 0 writes it
  if (writes_report()) hcsv.open(c.out + "/e2_heatmap.csv");
  hcsv << "norm,i,j,block_norm\n";
  std::vector<std::vector<std::vector<double>>> blocks;
  for (const auto& v : kVariants) {
    blocks.push_back(jacobian_blocks(v, hb, c.seed));
    for (std::size_t i = 0; i < hb; ++i) {
      for (std::size_t j = 0; j < hb; ++j)
        hcsv << v.name << ',' << i << ',' << j << ',' << fmt(blocks.back()[i][j]) << '\n';
    }
  }
  return blocks;
}

// --- aggregate -------------------------------------------------------------------------------

struct Results {
  double zero_max = 0;                // largest off-diagonal block of the variants that should have none
  double bn_small = 0, bn_large = 0;  // BatchNorm train: mean off-diagonal block, smallest and largest batch
  double bn_max_small = 0, bn_max_large = 0;  // BatchNorm train: largest off-diagonal block, the same
};

Results aggregate(const std::vector<Row>& rows, const std::vector<std::size_t>& sizes) {
  Results res;
  for (const auto& row : rows) {
    const std::string n = row.at("norm");
    const double B = num(row, "batch_size");
    if (n != "batch_train") res.zero_max = std::max(res.zero_max, num(row, "offdiag_max"));
    if (n == "batch_train" && B == static_cast<double>(sizes.front()))
      res.bn_small = num(row, "offdiag_mean"), res.bn_max_small = num(row, "offdiag_max");
    if (n == "batch_train" && B == static_cast<double>(sizes.back()))
      res.bn_large = num(row, "offdiag_mean"), res.bn_max_large = num(row, "offdiag_max");
  }
  return res;
}

// --- report ----------------------------------------------------------------------------------

// One panel per variant, on a log scale so that the small off-diagonal BatchNorm couplings are
// visible; exact zeros are blank.
void plot_blocks(const Config& c, const std::vector<std::vector<std::vector<double>>>& blocks) {
  double zmax = 0;
  for (const auto& block : blocks) {
    for (const auto& row : block) zmax = std::max(zmax, *std::max_element(row.begin(), row.end()));
  }
  std::vector<Heatmap> panels;
  for (std::size_t k = 0; k < kVariants.size(); ++k) {
    Heatmap h;
    h.title = kVariants[k].title;
    h.xlabel = "input j";
    h.ylabel = "output i";
    h.cblabel = "log10 ||dy_i/dx_j||";
    for (std::size_t i = 0; i < blocks[k].size(); ++i) {
      h.xticks.push_back(std::to_string(i));
      h.yticks.push_back(std::to_string(i));
    }
    for (const auto& row : blocks[k]) {
      std::vector<double> z;
      for (double b : row) z.push_back(b > 0 ? std::log10(b) : std::nan(""));
      h.z.push_back(z);
    }
    h.zmin = std::log10(zmax) - 4;
    h.zmax = std::log10(zmax);
    h.show_values = false;
    panels.push_back(h);
  }
  plot_heatmaps(c.out, "e2_heatmap", panels);
}

void report_table(const std::vector<Row>& rows, const std::vector<std::size_t>& sizes, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (std::size_t B : sizes) {
    std::vector<std::string> r = {std::to_string(B)};
    for (const auto& v : kVariants) {
      for (const auto& row : rows) {
        if (row.at("norm") == v.name && num(row, "batch_size") == static_cast<double>(B)) {
          r.push_back(short_num(num(row, "offdiag_max")) + " / " + short_num(num(row, "diag_mean")));
        }
      }
    }
    for (const auto& row : rows) {
      if (row.at("norm") == "batch_train" && num(row, "batch_size") == static_cast<double>(B))
        r.push_back(short_num(num(row, "offdiag_mean")));
    }
    table.push_back(r);
  }
  rep.table({"batch size", "no norm", "LayerNorm", "BatchNorm train", "BatchNorm eval",
             "BatchNorm train: mean off-diagonal block norm"},
            table);
}

// "falls", "rises" or "stays the same", from a value at the smallest batch to the largest.
std::string trend(double small, double large) {
  return large < small ? "falls" : large > small ? "rises" : "stays the same";
}

std::string reading_text(const Results& res, const std::vector<std::size_t>& sizes, std::size_t hb) {
  const std::string b0 = std::to_string(sizes.front()), b1 = std::to_string(sizes.back());
  return "**Reading.** For no norm, LayerNorm and BatchNorm in eval mode the largest off-diagonal block is " +
         short_num(res.zero_max) + ": " +
         (res.zero_max == 0 ? "exactly zero, no gradient flows between examples" : "not zero") +
         ". In training mode BatchNorm couples every pair of examples. From batch size " + b0 + " to " + b1 +
         " its largest off-diagonal block norm " + trend(res.bn_max_small, res.bn_max_large) + " (" +
         short_num(res.bn_max_small) + " → " + short_num(res.bn_max_large) +
         ") and its mean off-diagonal block norm " + trend(res.bn_small, res.bn_large) + " (" +
         short_num(res.bn_small) + " → " + short_num(res.bn_large) + ")" +
         (res.bn_large < res.bn_small
              ? ": each example's share of the batch statistics shrinks as the batch grows, but the coupling never "
                "reaches zero"
              : "") +
         " (the picture shows the batch of " + std::to_string(hb) + "; blank cells are exact zeros).";
}

}  // namespace

void experiment_cross_gradients(const Config& c, Report& rep, Summary& summary) {
  std::vector<std::size_t> sizes;
  for (std::size_t b = 2; b <= c.pick<std::size_t>(8, 32, 64); b *= 2) sizes.push_back(b);
  const auto rows = run_sizes(c, sizes);
  const std::size_t hb = c.pick<std::size_t>(4, 8, 16);
  plot_blocks(c, picture_blocks(c, hb));
  const Results res = aggregate(rows, sizes);

  rep.heading(2, "2. Cross-example gradients");
  rep.paragraph(
      "Through the tape we compute every Jacobian block d output_i / d input_j of a batch (one backward "
      "pass per output entry) for an MLP 16 → [32 → norm → tanh] × 2 → 4, and report the Frobenius norms "
      "of the off-diagonal blocks (i ≠ j): how much one example's output depends on another example's "
      "input. Data: `e2_cross_gradients.csv`, `e2_heatmap.csv`.");
  report_table(rows, sizes, rep);
  rep.paragraph(
      "Each cell of the four norm columns: largest off-diagonal block norm / mean diagonal block norm; the last "
      "column: BatchNorm train's mean off-diagonal block norm.");
  rep.image("e2_heatmap.png", "Jacobian block norms, batch " + std::to_string(hb));
  rep.paragraph(reading_text(res, sizes, hb));
  summary["e2"] = {{"offdiag_max_independent", res.zero_max},
                   {"offdiag_mean_batch_train_Bmin", res.bn_small},
                   {"offdiag_mean_batch_train_Bmax", res.bn_large}};
}

}  // namespace lab
