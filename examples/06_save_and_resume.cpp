// Chapter 6: save a training run and resume it, exactly.
//
// Run A trains an MLP on two spirals with Adam for N steps and writes a checkpoint after step k.
// Run B starts from scratch with a differently initialized model and a fresh optimizer, loads
// the checkpoint, and trains from step k to N. Because a run is a deterministic function of
// (model state, optimizer state, data order), B ends bit for bit where A ends:
//   - the checkpoint holds the parameters and buffers (state_dict) and Adam's per-parameter
//     moments and step counts, plus the step number (save_checkpoint / load_checkpoint);
//   - the DataLoader's order in epoch e depends only on (seed, e), so B calls set_epoch(e) and
//     skips the batches of that epoch that A had already used before the checkpoint.
// What a checkpoint does not hold has to be rebuilt the same way: the dataset (from its seed)
// and any random state of the model itself (a Dropout's generator would need saving too).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include <CLI/CLI.hpp>

#include "mlp.hpp"

namespace tg = tapegrad;

namespace {

struct Options {
  std::size_t steps = 600;
  std::size_t checkpoint_step = 250;
  std::size_t batch_size = 32;
  double lr = 0.01;
  std::string norm = "layer";
  std::uint64_t seed = 0;
  std::string checkpoint = "06_checkpoint.safetensors";
};

// Trains from global step `from` to `to` (steps counted over epochs, loader.size() per epoch),
// appending each step's loss; after_step(s) runs after step s (1-based count of steps done).
void train_steps(tg::Sequential<float>& net, tg::Optimizer<float>& opt, tg::DataLoader<float>& loader,
                 std::size_t from, std::size_t to, std::vector<float>& losses,
                 const std::function<void(std::size_t)>& after_step) {
  tg::Tape<float> tape;
  std::size_t s = from;
  while (s < to) {
    const std::size_t per_epoch = loader.size();
    std::size_t skip = s % per_epoch;  // batches of this epoch already used before `from`
    loader.set_epoch(s / per_epoch);
    for (const tg::Batch<float>& batch : loader) {
      if (skip > 0) {
        --skip;
        continue;
      }
      if (s == to) break;
      tape.reset();
      auto loss = tg::cross_entropy(net.forward(tape, tape.input(batch.inputs)), batch.labels);
      opt.zero_grad();
      tape.backward(loss);
      opt.step();
      losses.push_back(loss.item());
      ++s;
      after_step(s);
    }
  }
}

// Bits of a float, so the comparison is exact (and NaN == NaN, -0 != +0).
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 6: checkpoint a training run at step k, resume it, and get identical bits"};
  app.option_defaults()->always_capture_default();
  app.add_option("--steps", o.steps, "total optimizer steps N")->check(CLI::Range(2, 10000000));
  app.add_option("--checkpoint-step", o.checkpoint_step, "step k after which the checkpoint is written")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--batch-size", o.batch_size, "examples per step")->check(CLI::Range(1, 1 << 20));
  app.add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--norm", o.norm, "normalization after each hidden Linear (batch: buffers are saved too)")
      ->check(CLI::IsMember({"none", "layer", "batch"}));
  app.add_option("--seed", o.seed, "seed of the data, run A's initialization and the shuffling");
  app.add_option("--checkpoint", o.checkpoint, "where to write the checkpoint");
  CLI11_PARSE(app, argc, argv);
  if (o.checkpoint_step >= o.steps) {
    std::fprintf(stderr, "06_save_and_resume: --checkpoint-step (%zu) must be less than --steps (%zu)\n",
                 o.checkpoint_step, o.steps);
    return 2;
  }

  try {
    const auto data = tg::two_spirals<float>(500, 0.02, o.seed);
    const std::vector<std::size_t> hidden = {64, 64};

    // ---- run A: 0 -> N, checkpoint after step k ----
    auto net_a = examples::make_mlp<float>(2, hidden, 2, o.norm, o.seed);
    tg::Adam<float> opt_a(net_a->parameters(), o.lr);
    tg::DataLoader<float> loader_a(data, o.batch_size, /*shuffle=*/true, o.seed);
    std::vector<float> losses_a;
    std::printf("run A: %zu steps (%zu batches per epoch), checkpoint after step %zu\n", o.steps,
                loader_a.size(), o.checkpoint_step);
    train_steps(*net_a, opt_a, loader_a, 0, o.steps, losses_a, [&](std::size_t s) {
      if (s == o.checkpoint_step) {
        tg::save_checkpoint(o.checkpoint, *net_a, &opt_a, static_cast<std::int64_t>(s),
                            {{"example", "06_save_and_resume"}});
        std::printf("  step %zu: loss %.6f, checkpoint written to %s (%ju bytes)\n", s, losses_a.back(),
                    o.checkpoint.c_str(),
                    static_cast<std::uintmax_t>(std::filesystem::file_size(o.checkpoint)));
      }
    });
    std::printf("  step %zu: loss %.6f\n", o.steps, losses_a.back());

    const auto ck = tg::read_checkpoint<float>(o.checkpoint);
    std::printf("\nthe checkpoint: step %lld, %zu model tensors, %zu optimizer tensors, metadata:",
                static_cast<long long>(ck.step), ck.model.size(), ck.optimizer.size());
    for (const auto& [k, v] : ck.metadata) std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");

    // ---- run B: a fresh model (other init) and optimizer, load, k -> N ----
    auto net_b = examples::make_mlp<float>(2, hidden, 2, o.norm, o.seed + 12345);
    tg::Adam<float> opt_b(net_b->parameters(), o.lr);
    tg::DataLoader<float> loader_b(data, o.batch_size, /*shuffle=*/true, o.seed);
    const std::int64_t resumed = tg::load_checkpoint(o.checkpoint, *net_b, &opt_b);
    const auto start = static_cast<std::size_t>(resumed);
    std::printf(
        "\nrun B: fresh model and Adam, loaded the checkpoint at step %zu: epoch %zu, batch %zu of it\n",
        start, start / loader_b.size(), start % loader_b.size());
    std::vector<float> losses_b;
    train_steps(*net_b, opt_b, loader_b, start, o.steps, losses_b, [](std::size_t) {});
    std::printf("  step %zu: loss %.6f\n", o.steps, losses_b.back());

    // ---- compare ----
    std::printf("\nfinal state, A vs B (parameters and buffers):\n");
    std::printf("  %-22s %-10s %10s %12s\n", "tensor", "shape", "differing", "max |diff|");
    const auto sa = net_a->state_dict(), sb = net_b->state_dict();
    std::size_t differing = 0, total = 0;
    for (const auto& [name, a] : sa) {
      const auto& b = sb.at(name);
      std::size_t d = 0;
      double max_diff = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        d += !same_bits(a.data()[i], b.data()[i]);
        max_diff = std::max(max_diff, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
      }
      std::printf("  %-22s %-10s %10zu %12.3g\n", name.c_str(), tg::shape_str(a.shape()).c_str(), d,
                  max_diff);
      differing += d;
      total += a.size();
    }
    std::size_t loss_diffs = 0;
    for (std::size_t i = 0; i < losses_b.size(); ++i)
      loss_diffs += !same_bits(losses_a[start + i], losses_b[i]);
    std::printf("\nlosses of steps %zu..%zu: %zu of %zu differ; final loss A %.9g, B %.9g\n", start + 1,
                o.steps, loss_diffs, losses_b.size(), losses_a.back(), losses_b.back());
    const bool identical = differing == 0 && loss_diffs == 0;
    std::printf("%s: %zu of %zu values differ\n", identical ? "bitwise identical" : "NOT IDENTICAL",
                differing, total);

    // ---- run C, for contrast: the model alone, with a fresh Adam (moments zero, step 0) ----
    auto net_c = examples::make_mlp<float>(2, hidden, 2, o.norm, o.seed + 12345);
    tg::Adam<float> opt_c(net_c->parameters(), o.lr);
    tg::DataLoader<float> loader_c(data, o.batch_size, /*shuffle=*/true, o.seed);
    tg::load_checkpoint(o.checkpoint, *net_c);  // no optimizer: its state stays fresh
    std::vector<float> losses_c;
    train_steps(*net_c, opt_c, loader_c, start, o.steps, losses_c, [](std::size_t) {});
    const auto sc = net_c->state_dict();
    std::size_t differing_c = 0;
    for (const auto& [name, a] : sa) {
      for (std::size_t i = 0; i < a.size(); ++i)
        differing_c += !same_bits(a.data()[i], sc.at(name).data()[i]);
    }
    std::printf(
        "\nfor contrast, run C resumes the model but not Adam's state: final loss %.9g, %zu of %zu "
        "values differ from A\n",
        losses_c.back(), differing_c, total);
    return identical ? 0 : 1;
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "06_save_and_resume: %s\n", e.what());
    return 2;
  }
}
