// Soak: many training steps of a small MLP, one per normalization (none, LayerNorm,
// BatchNorm1d), with everything a real loop uses: DataLoader, Sequential, cross_entropy, SGD
// with momentum, zero_grad, clip_grad_norm and tape.reset().
//
// In the default test run (1,000 steps each; the Debug + ASan build makes LeakSanitizer check
// the process at exit) it asserts that the tape's memory is flat after the first step, the
// loss falls and every parameter stays finite. The hidden case "[.soak]" is the long run
// scripts/soak builds in Release: 100,000 steps by default (TAPEGRAD_SOAK_STEPS), reporting the
// process's resident set size from /proc/self/statm after a warm-up and at the end.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "support.hpp"

namespace tg = tapegrad;

namespace {

enum class Norm { None, Layer, Batch };

const char* norm_name(Norm n) {
  switch (n) {
    case Norm::None:
      return "none";
    case Norm::Layer:
      return "LayerNorm";
    case Norm::Batch:
      return "BatchNorm1d";
  }
  return "?";
}

// Linear(2, 32) -> norm -> Tanh -> Linear(32, 32) -> norm -> Tanh -> Linear(32, 2).
std::shared_ptr<tg::Sequential<float>> make_mlp(Norm norm, tg::Generator& gen) {
  auto m = std::make_shared<tg::Sequential<float>>();
  const std::size_t h = 32;
  for (std::size_t in : {std::size_t{2}, h}) {
    m->emplace_back<tg::Linear<float>>(in, h, tg::LinearOptions(), gen);
    if (norm == Norm::Layer) m->emplace_back<tg::LayerNorm<float>>(tg::Shape{h});
    if (norm == Norm::Batch) m->emplace_back<tg::BatchNorm1d<float>>(h);
    m->emplace_back<tg::Tanh<float>>();
  }
  m->emplace_back<tg::Linear<float>>(h, 2, tg::LinearOptions(), gen);
  return m;
}

// The resident set size of this process in bytes (/proc/self/statm: size resident ...).
std::size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

struct SoakResult {
  std::size_t steps = 0;
  float first_loss = 0, last_loss = 0;  // means over the first and the last epoch
  std::size_t tape_bytes_after_first = 0;
  bool tape_flat = true;                   // bytes_allocated() never changed after the first step
  std::size_t rss_start = 0, rss_end = 0;  // after `warmup` steps, and at the end
  double seconds = 0;
};

// Runs `steps` training steps, epoch after epoch over 128 points of two moons.
SoakResult train(Norm norm, std::size_t steps, std::size_t warmup) {
  tg::Generator gen(42);
  const tg::Dataset<float> data = tg::moons<float>(128, 0.1, 7);  // 2 classes, 4 batches of 32
  auto model = make_mlp(norm, gen);
  tg::SGD<float> opt(model->parameters(), 0.05, tg::SGDOptions{0.9});
  tg::DataLoader<float> loader(data, 32, /*shuffle=*/true, /*seed=*/3, /*drop_last=*/true);
  tg::Tape<float> tape;

  SoakResult r;
  double epoch_sum = 0;
  std::size_t epoch_n = 0;
  bool first_epoch = true;
  const auto t0 = std::chrono::steady_clock::now();
  while (r.steps < steps) {
    for (const tg::Batch<float>& b : loader) {
      if (r.steps == steps) break;
      if (r.steps == warmup) r.rss_start = rss_bytes();
      tape.reset();
      auto logits = (*model)(tape, tape.input(b.inputs));
      auto loss = tg::cross_entropy(logits, b.labels);
      opt.zero_grad();
      tape.backward(loss);
      tg::clip_grad_norm(opt.params(), 5.0);
      opt.step();
      epoch_sum += loss.item();
      ++epoch_n;
      ++r.steps;
      if (r.steps == 1)
        r.tape_bytes_after_first = tape.bytes_allocated();
      else if (tape.bytes_allocated() != r.tape_bytes_after_first)
        r.tape_flat = false;
    }
    const float mean = static_cast<float>(epoch_sum / static_cast<double>(epoch_n));
    if (first_epoch) r.first_loss = mean;
    first_epoch = false;
    r.last_loss = mean;
    epoch_sum = 0;
    epoch_n = 0;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rss_end = rss_bytes();
  for (auto* p : model->parameters()) {
    for (float v : p->value) {
      if (!std::isfinite(v)) r.last_loss = std::numeric_limits<float>::quiet_NaN();
    }
  }
  return r;
}

}  // namespace

TEST_CASE("1,000 MLP training steps per normalization keep the tape's memory flat and the loss falling") {
  for (Norm norm : {Norm::None, Norm::Layer, Norm::Batch}) {
    INFO("norm: " << norm_name(norm));
    const SoakResult r = train(norm, 1000, 0);
    CHECK(r.steps == 1000);
    CHECK(r.tape_bytes_after_first > 0);
    CHECK(r.tape_flat);
    CHECK(std::isfinite(r.last_loss));  // NaN also when a parameter went non-finite
    CHECK(r.first_loss > 0.3f);         // about log 2 = 0.69 at the start
    CHECK(r.last_loss < 0.5f * r.first_loss);
  }
}

TEST_CASE("soak: 100,000 training steps per normalization with RSS at start and end", "[.soak]") {
  std::size_t steps = 100000;
  if (const char* s = std::getenv("TAPEGRAD_SOAK_STEPS")) steps = std::strtoull(s, nullptr, 10);
  const std::size_t warmup = std::min<std::size_t>(1000, steps / 10);
  std::printf("soak: %zu steps per model, RSS sampled after %zu warm-up steps and at the end\n", steps,
              warmup);
  for (Norm norm : {Norm::None, Norm::Layer, Norm::Batch}) {
    INFO("norm: " << norm_name(norm));
    const SoakResult r = train(norm, steps, warmup);
    const double mib = 1024.0 * 1024.0;
    std::printf(
        "  %-11s %7zu steps in %6.1f s (%6.1f us/step)  loss %.3f -> %.3f  tape %zu B (%s)  "
        "RSS start %.2f MiB, end %.2f MiB, growth %+.0f KiB\n",
        norm_name(norm), r.steps, r.seconds, 1e6 * r.seconds / static_cast<double>(r.steps), r.first_loss,
        r.last_loss, r.tape_bytes_after_first, r.tape_flat ? "flat" : "GREW",
        static_cast<double>(r.rss_start) / mib, static_cast<double>(r.rss_end) / mib,
        (static_cast<double>(r.rss_end) - static_cast<double>(r.rss_start)) / 1024.0);
    std::fflush(stdout);
    CHECK(r.tape_flat);
    CHECK(std::isfinite(r.last_loss));
    // Memory may wobble by a few pages (allocator, stdio), not grow with the step count.
    CHECK(r.rss_end <= r.rss_start + 256 * 1024);
  }
}
