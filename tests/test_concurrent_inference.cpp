// Concurrent inference: a model in eval mode may be shared by threads, each forwarding on its
// own tape (include/tapegrad/nn/module.hpp). Every module type of include/tapegrad/nn runs on 4
// threads at once with a different mix of batch sizes per thread, and every output must have the
// same bits as the one computed on a single thread beforehand; afterwards the model's state is
// unchanged. Data races that leave the bits alone are for ThreadSanitizer: scripts/test builds
// every test with clang and TAPEGRAD_TSAN=ON (build-clang) and runs it.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <cctype>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "expect_error.hpp"
#include "support.hpp"

namespace {

using namespace tgtest;

constexpr int kThreads = 4;
constexpr int kRounds = 12;  // each thread forwards each of its inputs this many times

// Every class deriving from Module<T> in include/tapegrad/nn, each exercised below.
// SyncBatchNorm and DistributedDataParallel need MPI: their case is in tests/mpi_concurrent.cpp.
const std::set<std::string> kCoveredModules = {"SyncBatchNorm",
                                               "DistributedDataParallel",
                                               "ReLU",
                                               "Tanh",
                                               "Sigmoid",
                                               "LeakyReLU",
                                               "GELU",
                                               "ELU",
                                               "Softplus",
                                               "Dropout",
                                               "Linear",
                                               "LayerNorm",
                                               "BatchNorm1d",
                                               "GroupNorm",
                                               "RMSNorm",
                                               "InstanceNorm1d",
                                               "BatchRenorm1d",
                                               "GhostBatchNorm1d",
                                               "RNN",
                                               "RecurrentLayerNorm",
                                               "SequenceBatchNorm",
                                               "LNRNN",
                                               "BNRNN",
                                               "LSTM",
                                               "GRU",
                                               "RecurrentCell",  // (RNNCell's, LSTMCell's, GRUCell's base)
                                               "RNNCell",
                                               "LSTMCell",
                                               "GRUCell",
                                               "Embedding",
                                               "LNLSTM",
                                               "LNGRU",
                                               "Sequential"};

template <class T>
bool same_bits(const xt::xarray<T>& a, const xt::xarray<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
bool same_state(const tg::StateDict<T>& a, const tg::StateDict<T>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    if (!b.count(k) || !same_bits(v, b.at(k))) return false;
  }
  return true;
}

// Runs body(k) on kThreads threads that start together (a spin on a shared counter, so they
// overlap as much as possible).
template <class F>
void run_threads(F&& body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      body(k);
    });
  }
  for (auto& th : threads) th.join();
}

template <class T>
struct Case {
  std::string name;
  // The same module on every call (fixed seeds).
  std::function<std::shared_ptr<tg::Module<T>>()> build;
  // An input for batch size `batch`; `seed` picks the values (and may pick the length).
  std::function<xt::xarray<T>(std::size_t batch, std::uint64_t seed)> input;
  std::vector<std::size_t> batches = {1, 2, 3, 5, 8};
  int train_steps = 0;  // training forwards before eval, for non-trivial running statistics
};

template <class T>
xt::xarray<T> forward_once(tg::Module<T>& m, const xt::xarray<T>& x) {
  tg::Tape<T> tape;
  return tape.value(m(tape, tape.input(x)));
}

// The reference model is trained (train_steps), switched to eval and run on one thread; a
// fresh model of the same build gets its state and is shared by the threads, so scratch a
// module sizes on its first forward is first sized concurrently too.
template <class T>
void check_concurrent_eval(const Case<T>& c) {
  INFO(c.name);
  tg::set_blas_threads(1);  // OpenBLAS's own threads are not what is tested (nor instrumented)
  auto ref = c.build();
  for (int s = 0; s < c.train_steps; ++s) {
    tg::Tape<T> tape;
    (*ref)(tape, tape.input(c.input(4, 1000 + static_cast<std::uint64_t>(s))));
  }
  ref->eval();
  const auto state = ref->state_dict();
  std::vector<std::vector<xt::xarray<T>>> inputs(kThreads), expected(kThreads);
  const std::size_t n = c.batches.size();
  for (std::size_t k = 0; k < kThreads; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      inputs[k].push_back(c.input(c.batches[(i + k) % n], 100 * k + i));
      expected[k].push_back(forward_once(*ref, inputs[k].back()));
    }
  }
  auto shared = c.build();
  shared->load_state_dict(state);
  shared->eval();
  std::atomic<int> mismatches{0}, errors{0};
  run_threads([&](int k) {
    const auto& in = inputs[static_cast<std::size_t>(k)];
    const auto& want = expected[static_cast<std::size_t>(k)];
    tg::Tape<T> tape;
    try {
      for (int r = 0; r < kRounds; ++r) {
        for (std::size_t i = 0; i < in.size(); ++i) {
          // Alternately with and without recording for backward: both paths must be pure.
          const bool grad = (static_cast<std::size_t>(r) + i) % 2 == 0;
          std::optional<tg::NoGradGuard> no_grad;
          if (!grad) no_grad.emplace();
          tape.reset();
          const tg::Var<T> y = (*shared)(tape, tape.input(in[i], grad));
          if (!same_bits(tape.value(y), want[i])) mismatches.fetch_add(1);
        }
      }
    } catch (...) {
      errors.fetch_add(1);
    }
  });
  CHECK(mismatches.load() == 0);
  CHECK(errors.load() == 0);
  CHECK_FALSE(shared->is_training());
  CHECK(same_state(shared->state_dict(), state));
}

// (N, F) inputs.
template <class T>
auto rows(std::size_t features) {
  return [features](std::size_t batch, std::uint64_t seed) { return randn<T>({batch, features}, seed); };
}

// Sequences whose length depends on the seed (1 to 6 steps): (T, N, I), or (N, T, I) with
// batch_first.
template <class T>
auto sequences(std::size_t features, bool batch_first) {
  return [=](std::size_t batch, std::uint64_t seed) {
    const std::size_t len = 1 + seed % 6;
    return batch_first ? randn<T>({batch, len, features}, seed) : randn<T>({len, batch, features}, seed);
  };
}

template <class T, class M, class... Args>
std::function<std::shared_ptr<tg::Module<T>>()> builder(Args... args) {
  return [=] { return std::static_pointer_cast<tg::Module<T>>(std::make_shared<M>(args...)); };
}

// Modules with a Generator argument: a fresh generator of the same seed per build.
template <class T, class M, class... Args>
std::function<std::shared_ptr<tg::Module<T>>()> seeded_builder(Args... args) {
  return [=] {
    tg::Generator gen(7);
    return std::static_pointer_cast<tg::Module<T>>(std::make_shared<M>(args..., gen));
  };
}

// The (X, B) of every "class X : public B<T>" in a header's text.
std::vector<std::pair<std::string, std::string>> derived_classes(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto is_name = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  const auto skip_space = [&](std::size_t i) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    return i;
  };
  for (std::size_t at = text.find("class "); at != std::string::npos; at = text.find("class ", at + 1)) {
    const std::size_t begin = skip_space(at + 6);
    std::size_t end = begin;
    while (end < text.size() && is_name(text[end])) ++end;
    std::size_t i = skip_space(end);
    if (text.compare(i, 5, "final") == 0) i = skip_space(i + 5);
    if (i >= text.size() || text[i] != ':') continue;
    i = skip_space(i + 1);
    if (text.compare(i, 6, "public") != 0) continue;
    i = skip_space(i + 6);
    std::size_t base_end = i;
    while (base_end < text.size() && is_name(text[base_end])) ++base_end;
    if (text.compare(base_end, 3, "<T>") == 0 && end > begin && base_end > i) {
      out.emplace_back(text.substr(begin, end - begin), text.substr(i, base_end - i));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every module class in include/tapegrad/nn is covered by the concurrent inference tests") {
  std::vector<std::pair<std::string, std::string>> derived;
  const auto dir = std::filesystem::path(TAPEGRAD_SOURCE_DIR) / "include" / "tapegrad" / "nn";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".hpp") continue;
    for (const auto& d : derived_classes(read_bytes(entry.path()))) derived.push_back(d);
  }
  // Module<T>'s subclasses, direct or through another module class (RecurrentLayerNorm).
  std::set<std::string> found;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [name, base] : derived) {
      if ((base == "Module" || found.count(base) == 1) && found.insert(name).second) grew = true;
    }
  }
  CHECK(found.size() >= kCoveredModules.size());
  for (const auto& name : found) {
    INFO("module class " << name << " has no concurrent inference test: add one and list it");
    CHECK(kCoveredModules.count(name) == 1);
  }
}

TEMPLATE_TEST_CASE(
    "activation modules and Dropout give the single-thread bits when threads share them in eval mode", "",
    float, double) {
  using T = TestType;
  const auto in = rows<T>(37);  // 37: the vector kernels' tails too
  check_concurrent_eval<T>({"ReLU", builder<T, tg::ReLU<T>>(), in});
  check_concurrent_eval<T>({"Tanh", builder<T, tg::Tanh<T>>(), in});
  check_concurrent_eval<T>({"Sigmoid", builder<T, tg::Sigmoid<T>>(), in});
  check_concurrent_eval<T>({"LeakyReLU", builder<T, tg::LeakyReLU<T>>(0.2), in});
  check_concurrent_eval<T>({"GELU none", builder<T, tg::GELU<T>>(tg::GeluApprox::None), in});
  check_concurrent_eval<T>({"GELU tanh", builder<T, tg::GELU<T>>(tg::GeluApprox::Tanh), in});
  check_concurrent_eval<T>({"ELU", builder<T, tg::ELU<T>>(0.7), in});
  check_concurrent_eval<T>({"Softplus", builder<T, tg::Softplus<T>>(2.0, 5.0), in});
  check_concurrent_eval<T>(
      {"Dropout", builder<T, tg::Dropout<T>>(0.5, std::uint64_t(3)), in, {1, 2, 3, 5, 8}, 2});
}

TEMPLATE_TEST_CASE("Linear gives the single-thread bits when threads share it in eval mode", "", float,
                   double) {
  using T = TestType;
  check_concurrent_eval<T>(
      {"Linear", seeded_builder<T, tg::Linear<T>>(6, 5, tg::LinearOptions()), rows<T>(6)});
  check_concurrent_eval<T>({"Linear without bias",
                            seeded_builder<T, tg::Linear<T>>(6, 5, tg::LinearOptions().bias(false)),
                            rows<T>(6)});
}

TEMPLATE_TEST_CASE("LayerNorm gives the single-thread bits when threads share it in eval mode", "", float,
                   double) {
  using T = TestType;
  check_concurrent_eval<T>(
      {"LayerNorm", builder<T, tg::LayerNorm<T>>(tg::Shape{8}, tg::LayerNormOptions()), rows<T>(8)});
  check_concurrent_eval<T>(
      {"LayerNorm without affine",
       builder<T, tg::LayerNorm<T>>(tg::Shape{8}, tg::LayerNormOptions().elementwise_affine(false)),
       rows<T>(8)});
  check_concurrent_eval<T>({"LayerNorm over (3, 4)",
                            builder<T, tg::LayerNorm<T>>(tg::Shape{3, 4}, tg::LayerNormOptions()),
                            [](std::size_t b, std::uint64_t s) {
                              return randn<T>({b, 3, 4}, s);
                            }});
}

TEMPLATE_TEST_CASE("GroupNorm gives the single-thread bits when threads share it in eval mode", "", float,
                   double) {
  using T = TestType;
  check_concurrent_eval<T>(
      {"GroupNorm (N, C)",
       builder<T, tg::GroupNorm<T>>(std::size_t(3), std::size_t(6), tg::GroupNormOptions()), rows<T>(6)});
  check_concurrent_eval<T>(
      {"GroupNorm (N, C, L) without affine",
       builder<T, tg::GroupNorm<T>>(std::size_t(2), std::size_t(6), tg::GroupNormOptions().affine(false)),
       [](std::size_t b, std::uint64_t s) {
         return randn<T>({b, 6, 5}, s, 2.0);
       }});
}

TEMPLATE_TEST_CASE("RMSNorm gives the single-thread bits when threads share it in eval mode", "", float,
                   double) {
  using T = TestType;
  check_concurrent_eval<T>(
      {"RMSNorm", builder<T, tg::RMSNorm<T>>(tg::Shape{37}, tg::RMSNormOptions()), rows<T>(37)});
  check_concurrent_eval<T>(
      {"RMSNorm over (3, 4) without affine",
       builder<T, tg::RMSNorm<T>>(tg::Shape{3, 4}, tg::RMSNormOptions().elementwise_affine(false)),
       [](std::size_t b, std::uint64_t s) {
         return randn<T>({b, 3, 4}, s);
       }});
}

TEMPLATE_TEST_CASE(
    "InstanceNorm1d with and without running statistics gives the single-thread bits when threads share it in eval mode",
    "", float, double) {
  using T = TestType;
  const auto ncl = [](std::size_t b, std::uint64_t s) { return randn<T>({b, 4, 6}, s, 2.0); };
  for (bool track : {true, false}) {
    const auto options = tg::InstanceNormOptions().affine(true).track_running_stats(track);
    check_concurrent_eval<T>({std::string("InstanceNorm1d track_running_stats=") + (track ? "true" : "false"),
                              builder<T, tg::InstanceNorm1d<T>>(std::size_t(4), options),
                              ncl,
                              {1, 2, 3, 5, 8},
                              3});
  }
}

TEMPLATE_TEST_CASE(
    "BatchRenorm1d and GhostBatchNorm1d give the single-thread bits when threads share them in eval mode", "",
    float, double) {
  using T = TestType;
  const auto ncl = [](std::size_t b, std::uint64_t s) { return randn<T>({b, 5, 3}, s, 2.0); };
  check_concurrent_eval<T>(
      {"BatchRenorm1d (N, C)",
       builder<T, tg::BatchRenorm1d<T>>(std::size_t(5), tg::BatchRenormOptions().r_max(1.5)),
       rows<T>(5),
       {1, 2, 3, 5, 8},
       3});
  check_concurrent_eval<T>(
      {"BatchRenorm1d (N, C, L) without affine",
       builder<T, tg::BatchRenorm1d<T>>(std::size_t(5), tg::BatchRenormOptions().affine(false)),
       ncl,
       {1, 2, 3, 5, 8},
       3});
  check_concurrent_eval<T>(
      {"GhostBatchNorm1d (N, C)",
       builder<T, tg::GhostBatchNorm1d<T>>(std::size_t(5), std::size_t(2), tg::BatchNormOptions()),
       rows<T>(5),
       {1, 2, 3, 5, 8},
       3});
  check_concurrent_eval<T>(
      {"GhostBatchNorm1d (N, C, L)",
       builder<T, tg::GhostBatchNorm1d<T>>(std::size_t(5), std::size_t(3), tg::BatchNormOptions()),
       ncl,
       {1, 2, 3, 5, 8},
       3});
}

TEMPLATE_TEST_CASE(
    "BatchNorm1d with and without running statistics gives the single-thread bits when threads share it in eval mode",
    "", float, double) {
  using T = TestType;
  const auto ncl = [](std::size_t b, std::uint64_t s) { return randn<T>({b, 5, 3}, s, 2.0); };
  const std::vector<std::size_t> two_or_more = {2, 3, 5, 8, 13};  // batch statistics need 2 values
  for (bool track : {true, false}) {
    for (bool affine : {true, false}) {
      const auto options = tg::BatchNormOptions().track_running_stats(track).affine(affine);
      const std::string name = std::string("BatchNorm1d track_running_stats=") + (track ? "true" : "false") +
                               " affine=" + (affine ? "true" : "false");
      check_concurrent_eval<T>({name + " (N, C)", builder<T, tg::BatchNorm1d<T>>(std::size_t(5), options),
                                rows<T>(5), track ? std::vector<std::size_t>{1, 2, 3, 5, 8} : two_or_more,
                                3});
      check_concurrent_eval<T>({name + " (N, C, L)",
                                builder<T, tg::BatchNorm1d<T>>(std::size_t(5), options),
                                ncl,
                                {1, 2, 3, 5, 8},
                                3});
    }
  }
}

TEMPLATE_TEST_CASE("RNN gives the single-thread bits when threads share it in eval mode", "", float, double) {
  using T = TestType;
  check_concurrent_eval<T>(
      {"RNN tanh", seeded_builder<T, tg::RNN<T>>(4, 6, tg::RNNOptions()), sequences<T>(4, false)});
  check_concurrent_eval<T>(
      {"RNN relu, 2 layers, no bias, batch_first",
       seeded_builder<T, tg::RNN<T>>(
           4, 6, tg::RNNOptions().nonlinearity("relu").num_layers(2).bias(false).batch_first(true)),
       sequences<T>(4, true)});
  check_concurrent_eval<T>({"RNN unbatched", seeded_builder<T, tg::RNN<T>>(4, 6, tg::RNNOptions()),
                            [](std::size_t b, std::uint64_t s) {
                              return randn<T>({b, 4}, s);
                            }});
}

TEMPLATE_TEST_CASE(
    "LSTM, GRU, bidirectional RNN and the cells give the single-thread bits when threads share them", "",
    float, double) {
  using T = TestType;
  const auto deep = [] { return tg::LSTMOptions().num_layers(2).bidirectional(true).dropout(0.5); };
  check_concurrent_eval<T>(
      {"LSTM", seeded_builder<T, tg::LSTM<T>>(4, 6, tg::LSTMOptions()), sequences<T>(4, false)});
  check_concurrent_eval<T>({"LSTM 2 bidirectional layers, dropout, batch_first",
                            seeded_builder<T, tg::LSTM<T>>(4, 6, deep().batch_first(true)),
                            sequences<T>(4, true)});
  check_concurrent_eval<T>(
      {"GRU 2 bidirectional layers, dropout",
       seeded_builder<T, tg::GRU<T>>(4, 6, tg::GRUOptions().num_layers(2).bidirectional(true).dropout(0.5)),
       sequences<T>(4, false)});
  check_concurrent_eval<T>(
      {"RNN bidirectional, dropout",
       seeded_builder<T, tg::RNN<T>>(4, 6, tg::RNNOptions().num_layers(2).bidirectional(true).dropout(0.5)),
       sequences<T>(4, false)});
  check_concurrent_eval<T>(
      {"RNNCell", seeded_builder<T, tg::RNNCell<T>>(4, 6, tg::RNNCellOptions()), rows<T>(4)});
  check_concurrent_eval<T>(
      {"LSTMCell", seeded_builder<T, tg::LSTMCell<T>>(4, 6, tg::LSTMCellOptions()), rows<T>(4)});
  check_concurrent_eval<T>(
      {"GRUCell", seeded_builder<T, tg::GRUCell<T>>(4, 6, tg::GRUCellOptions()), rows<T>(4)});
  check_concurrent_eval<T>(
      {"LNLSTM", seeded_builder<T, tg::LNLSTM<T>>(4, 6, tg::LNLSTMOptions()), sequences<T>(4, false)});
  check_concurrent_eval<T>({"LNGRU batch_first",
                            seeded_builder<T, tg::LNGRU<T>>(4, 6, tg::LNGRUOptions().batch_first(true)),
                            sequences<T>(4, true)});
  // Embedding in a Sequential takes its indices as values of T: a (T, N) sequence of token ids.
  check_concurrent_eval<T>({"Embedding with padding_idx",
                            seeded_builder<T, tg::Embedding<T>>(11, 5, tg::EmbeddingOptions().padding_idx(0)),
                            [](std::size_t batch, std::uint64_t seed) {
                              xt::xarray<T> ids = xt::zeros<T>({1 + seed % 6, batch});
                              for (std::size_t i = 0; i < ids.size(); ++i)
                                ids.data()[i] = T((seed * 7 + i * 3) % 11);
                              return ids;
                            }});
}

TEMPLATE_TEST_CASE("LNRNN in both variants gives the single-thread bits when threads share it in eval mode",
                   "", float, double) {
  using T = TestType;
  for (auto variant : {tg::LNVariant::Summed, tg::LNVariant::Separate}) {
    for (bool batch_first : {false, true}) {
      const std::string name = std::string("LNRNN ") +
                               (variant == tg::LNVariant::Summed ? "summed" : "separate") +
                               (batch_first ? " batch_first" : "");
      const auto options = tg::LNRNNOptions().variant(variant).batch_first(batch_first);
      check_concurrent_eval<T>(
          {name, seeded_builder<T, tg::LNRNN<T>>(4, 64, options), sequences<T>(4, batch_first)});
    }
  }
  check_concurrent_eval<T>({"LNRNN unbatched", seeded_builder<T, tg::LNRNN<T>>(4, 6, tg::LNRNNOptions()),
                            [](std::size_t b, std::uint64_t s) {
                              return randn<T>({b, 4}, s);
                            }});
  check_concurrent_eval<T>(
      {"RecurrentLayerNorm", builder<T, tg::RecurrentLayerNorm<T>>(std::size_t(6), 1e-5), rows<T>(6)});
}

TEMPLATE_TEST_CASE(
    "BNRNN and SequenceBatchNorm give the single-thread bits when threads share them in eval mode", "", float,
    double) {
  using T = TestType;
  // max_length 3 and sequences of up to 6 steps: each step has its own statistics, and the
  // steps past the last share it. Trained first so every step's statistics differ.
  for (bool batch_first : {false, true}) {
    const auto options = tg::BNRNNOptions().max_length(3).batch_first(batch_first);
    check_concurrent_eval<T>({std::string("BNRNN") + (batch_first ? " batch_first" : ""),
                              seeded_builder<T, tg::BNRNN<T>>(4, 64, options),
                              sequences<T>(4, batch_first),
                              {1, 2, 3, 5, 8},
                              4});
  }
  check_concurrent_eval<T>(
      {"SequenceBatchNorm",
       builder<T, tg::SequenceBatchNorm<T>>(std::size_t(64), std::size_t(3), 0.5, 1e-5, 0.3),
       sequences<T>(64, false),
       {1, 2, 3, 5, 8},
       4});
}

TEMPLATE_TEST_CASE(
    "nested Sequentials of every kind of layer give the single-thread bits when threads share them in eval mode",
    "", float, double) {
  using T = TestType;
  const auto mlp = [] {
    tg::Generator gen(11);
    auto inner = std::make_shared<tg::Sequential<T>>();
    inner->template emplace_back<tg::Linear<T>>(16, 12, tg::LinearOptions(), gen);
    inner->template emplace_back<tg::LayerNorm<T>>(tg::Shape{12});
    inner->template emplace_back<tg::GELU<T>>();
    inner->template emplace_back<tg::BatchNorm1d<T>>(12);
    inner->template emplace_back<tg::Tanh<T>>();
    auto net = std::make_shared<tg::Sequential<T>>();
    net->template emplace_back<tg::Linear<T>>(6, 16, tg::LinearOptions(), gen);
    net->template emplace_back<tg::BatchNorm1d<T>>(16, tg::BatchNormOptions().track_running_stats(false));
    net->template emplace_back<tg::ReLU<T>>();
    net->template emplace_back<tg::Dropout<T>>(0.3, 5);
    net->push_back(inner);
    net->template emplace_back<tg::Linear<T>>(12, 3, tg::LinearOptions(), gen);
    return std::static_pointer_cast<tg::Module<T>>(net);
  };
  check_concurrent_eval<T>({"Sequential MLP", mlp, rows<T>(6), {2, 3, 5, 8, 13}, 3});

  const auto recurrent = [] {
    tg::Generator gen(13);
    auto net = std::make_shared<tg::Sequential<T>>();
    net->template emplace_back<tg::LNRNN<T>>(4, 6, tg::LNRNNOptions().variant(tg::LNVariant::Separate), gen);
    net->template emplace_back<tg::BNRNN<T>>(6, 5, tg::BNRNNOptions().max_length(2), gen);
    auto head = std::make_shared<tg::Sequential<T>>();
    head->template emplace_back<tg::LayerNorm<T>>(tg::Shape{5});
    head->template emplace_back<tg::RNN<T>>(5, 3, tg::RNNOptions(), gen);
    head->template emplace_back<tg::Linear<T>>(3, 2, tg::LinearOptions(), gen);
    net->push_back(head);
    return std::static_pointer_cast<tg::Module<T>>(net);
  };
  check_concurrent_eval<T>(
      {"Sequential of recurrent layers", recurrent, sequences<T>(4, false), {1, 2, 3, 5, 8}, 3});
}

namespace {

// A classifier with Dropout and BatchNorm1d (which behave differently in training mode) and a
// dataset of 4 classes.
struct Classifier {
  std::shared_ptr<tg::Sequential<float>> net = std::make_shared<tg::Sequential<float>>();
  tg::Dataset<float> data;
  Classifier() : data(randn<float>({2003, 6}, 1), labels()) {
    tg::Generator gen(3);
    net->emplace_back<tg::Linear<float>>(6, 16, tg::LinearOptions(), gen);
    net->emplace_back<tg::BatchNorm1d<float>>(16);
    net->emplace_back<tg::ReLU<float>>();
    net->emplace_back<tg::Dropout<float>>(0.5, 9);
    net->emplace_back<tg::Linear<float>>(16, 4, tg::LinearOptions(), gen);
    tg::Tape<float> tape;  // one training forward: running statistics that are not the init
    (*net)(tape, tape.input(randn<float>({32, 6}, 2, 3.0)));
  }
  static std::vector<std::int64_t> labels() {
    std::vector<std::int64_t> out(2003);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int64_t>((i * 7) % 4);
    return out;
  }
};

}  // namespace

TEST_CASE(
    "classification_accuracy called by several threads on one model in training mode gives each the eval-mode accuracy and changes nothing") {
  tg::set_blas_threads(1);
  Classifier c;
  REQUIRE(c.net->is_training());
  const auto state = c.net->state_dict();
  const std::vector<std::size_t> batch_sizes = {7, 16, 50, 1000};
  // Single-thread references: eval mode by hand.
  std::vector<double> expected;
  c.net->eval();
  for (std::size_t b : batch_sizes) expected.push_back(tg::classification_accuracy(*c.net, c.data, b));
  c.net->train();
  std::atomic<int> mismatches{0}, errors{0};
  run_threads([&](int k) {
    try {
      for (int r = 0; r < 8; ++r) {
        const auto i = static_cast<std::size_t>(k + r) % batch_sizes.size();
        if (tg::classification_accuracy(*c.net, c.data, batch_sizes[i]) != expected[i])
          mismatches.fetch_add(1);
      }
    } catch (...) {
      errors.fetch_add(1);
    }
  });
  CHECK(mismatches.load() == 0);
  CHECK(errors.load() == 0);
  CHECK(c.net->is_training());
  CHECK(same_state(c.net->state_dict(), state));  // no running statistics updated
  // Nor did Dropout draw: a training forward drops what it would have dropped anyway.
  Classifier twin;
  tg::Tape<float> t1, t2;
  const auto x = randn<float>({5, 6}, 4);
  CHECK(same_bits(t1.value((*c.net)(t1, t1.input(x))), t2.value((*twin.net)(t2, t2.input(x)))));
}

TEST_CASE(
    "classification_accuracy rejects a batch size of 0 or a negative one converted to size_t, naming it") {
  Classifier c;
  const auto state = c.net->state_dict();
  expect_error<tg::ValueError>([&] { tg::classification_accuracy(*c.net, c.data, 0); }, {"batch_size", "0"});
  expect_error<tg::ValueError>(
      [&] { tg::classification_accuracy(*c.net, c.data, static_cast<std::size_t>(-1)); },
      {"batch_size", "-1"});
  expect_error<tg::ValueError>(
      [&] { tg::classification_accuracy(*c.net, c.data, static_cast<std::size_t>(-32)); },
      {"batch_size", "-32"});
  CHECK(c.net->is_training());
  CHECK(same_state(c.net->state_dict(), state));
  // A batch larger than the dataset is one batch.
  CHECK(tg::classification_accuracy(*c.net, c.data, std::size_t(1) << 62) ==
        tg::classification_accuracy(*c.net, c.data, 2003));
}

TEST_CASE(
    "EvalModeGuard makes modules forward as in eval mode on its own thread only, without changing their mode") {
  Classifier c;
  const auto state = c.net->state_dict();
  const auto x = randn<float>({5, 6}, 4);
  c.net->eval();
  const auto eval_out = forward_once(*c.net, x);
  c.net->train();
  {
    tg::EvalModeGuard guard;
    CHECK_FALSE(c.net->is_training());
    CHECK(same_bits(forward_once(*c.net, x), eval_out));
    std::atomic<bool> other_thread_sees_training{false};
    std::thread([&] { other_thread_sees_training = c.net->is_training(); }).join();
    CHECK(other_thread_sees_training.load());
    {
      tg::EvalModeGuard nested;
      CHECK_FALSE(c.net->is_training());
    }
    CHECK_FALSE(c.net->is_training());
  }
  CHECK(c.net->is_training());
  CHECK(same_state(c.net->state_dict(), state));
}
