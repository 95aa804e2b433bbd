// Intra-op threads (core/threads.hpp) and the pool's parallel_for (lib/core/parallel.hpp,
// internal: this test has lib/ on its include path). Every index is visited exactly once in
// blocks aligned as asked, for 1 to 4 threads; nested and concurrent use neither deadlocks nor
// races (the clang build runs this under ThreadSanitizer); products give bitwise identical
// rows for any thread count on tapegrad's kernels and in batch-invariant mode, and agree within
// float rounding on the BLAS; a whole training step agrees with the one-thread step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstring>
#include <thread>
#include <vector>

#include "core/parallel.hpp"
#include "expect_error.hpp"
#include "support.hpp"
#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;
using tgtest::randn;

namespace {

// Sets the thread count for one test and restores 1 (the default) after it.
struct ThreadsScope {
  explicit ThreadsScope(int n) { tg::set_num_threads(n); }
  ~ThreadsScope() { tg::set_num_threads(1); }
};

std::vector<int> visit_counts(std::size_t n, std::size_t min_block, std::size_t align,
                              std::vector<std::size_t>* starts = nullptr) {
  std::vector<std::atomic<int>> seen(n);
  std::vector<std::size_t> begins;
  std::mutex m;
  tg::detail::parallel_for(n, min_block, align, [&](std::size_t b, std::size_t e) {
    {
      std::lock_guard<std::mutex> lk(m);
      begins.push_back(b);
    }
    for (std::size_t i = b; i < e; ++i) seen[i].fetch_add(1);
  });
  if (starts) *starts = begins;
  std::vector<int> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = seen[i].load();
  return out;
}

// Y = linear(X, W, b) forward and the three gradients, as flat arrays.
std::vector<xt::xarray<float>> linear_step(const xt::xarray<float>& x, const xt::xarray<float>& w,
                                           const xt::xarray<float>& b) {
  tg::Tape<float> t;
  auto xv = t.input(x, true), wv = t.input(w, true), bv = t.input(b, true);
  auto y = tg::linear(xv, wv, bv);
  t.backward(tg::sum(tg::tanh(y)));
  return {y.value(), t.grad(xv), t.grad(wv), t.grad(bv)};
}

bool bitwise_equal(const xt::xarray<float>& a, const xt::xarray<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("set_num_threads refuses 0, negative and absurd counts, naming them; the setting is unchanged") {
  REQUIRE(tg::num_threads() == 1);
  tgtest::expect_error<tg::ValueError>([] { tg::set_num_threads(0); }, {"set_num_threads", "got 0"});
  tgtest::expect_error<tg::ValueError>([] { tg::set_num_threads(-3); }, {"set_num_threads", "got -3"});
  tgtest::expect_error<tg::ValueError>([] { tg::set_num_threads(100000); },
                                       {"set_num_threads", "got 100000"});
  CHECK(tg::num_threads() == 1);
  {
    ThreadsScope two(2);
    CHECK(tg::num_threads() == 2);
    CHECK(tg::blas_threads() == 1);  // one level of threading
  }
  CHECK(tg::num_threads() == 1);
}

TEST_CASE("parallel_for visits every index once, in aligned blocks, for 1 to 4 threads") {
  for (int threads : {1, 2, 3, 4}) {
    ThreadsScope scope(threads);
    for (std::size_t n : {0, 1, 15, 16, 17, 100, 1000, 4099}) {
      for (std::size_t align : {1, 8, 16}) {
        INFO("threads " << threads << ", n " << n << ", align " << align);
        std::vector<std::size_t> starts;
        const auto counts = visit_counts(n, 10, align, &starts);
        CHECK(std::all_of(counts.begin(), counts.end(), [](int c) { return c == 1; }));
        for (std::size_t s : starts) CHECK(s % align == 0);
        const std::size_t expect = n / 10 >= 2 ? std::min<std::size_t>(n / 10, std::size_t(threads)) : 1;
        CHECK(tg::detail::parallel_blocks(n, 10) == expect);
      }
    }
  }
}

TEST_CASE("nested and concurrent parallel_for neither deadlock nor lose work") {
  ThreadsScope scope(2);
  // Nested: the inner loop runs on the thread of its outer block. (Catch2's assertions are not
  // thread-safe: the workers count, the main thread checks.)
  std::atomic<long> total{0};
  std::atomic<int> nested_split{0};
  tg::detail::parallel_for(100, 10, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      nested_split += tg::detail::parallel_blocks(1000, 10) != 1;
      tg::detail::parallel_for(50, 10, 1, [&](std::size_t b2, std::size_t e2) { total += long(e2 - b2); });
    }
  });
  CHECK(nested_split.load() == 0);
  CHECK(total.load() == 100 * 50);
  // Four user threads at once: one gets the pool, the others run inline; every count is right.
  std::vector<std::thread> users;
  std::atomic<int> wrong{0};
  for (int u = 0; u < 4; ++u) {
    users.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) {
        const auto counts = visit_counts(997, 50, 1);
        for (int c : counts) wrong += c != 1;
      }
    });
  }
  for (auto& th : users) th.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("a linear layer gives bitwise identical rows for any thread count on tapegrad's kernels") {
  const xt::xarray<float> x = randn<float>({301, 257}, 1), w = randn<float>({130, 257}, 2, 0.05),
                          b = randn<float>({130}, 3);
  for (tg::GemmBackend backend : {tg::GemmBackend::kOwn, tg::GemmBackend::kBlas}) {
    tg::set_gemm_backend(backend);
    const auto one = linear_step(x, w, b);
    for (int threads : {2, 3}) {
      ThreadsScope scope(threads);
      const auto many = linear_step(x, w, b);
      INFO("threads " << threads << (backend == tg::GemmBackend::kOwn ? ", own kernels" : ", BLAS"));
      for (std::size_t k = 0; k < one.size(); ++k) {
        if (backend == tg::GemmBackend::kOwn) {
          CHECK(bitwise_equal(one[k], many[k]));
        } else {
          CHECK(tgtest::max_abs_diff(one[k], many[k]) < 1e-4);
        }
      }
    }
  }
  tg::set_gemm_backend(tg::GemmBackend::kAuto);
  tg::BatchInvariantGuard invariant;
  const auto one = linear_step(x, w, b);
  ThreadsScope scope(2);
  CHECK(bitwise_equal(one[0], linear_step(x, w, b)[0]));  // the forward output
}

// The largest difference over 25 repeats between the gradients of sum(tanh(linear(x, w, b)))
// at 1 thread and at each of `threads` (a race between two writers shows only sometimes). x, w
// and b are indices into `values`, so that one input can stand for two of them.
double worst_tied_linear(const std::vector<xt::xarray<float>>& values, std::size_t x, std::size_t w,
                         std::size_t b, std::initializer_list<int> threads) {
  auto grads = [&](int n) {
    ThreadsScope scope(n);
    tg::Tape<float> t;
    std::vector<tg::Var<float>> in;
    for (const auto& v : values) in.push_back(t.input(v, true));
    t.backward(tg::sum(tg::tanh(tg::linear(in[x], in[w], in[b]))));
    std::vector<xt::xarray<float>> g;
    for (const auto& v : in) g.push_back(t.grad(v));
    return g;
  };
  const auto one = grads(1);
  double worst = 0;
  for (int repeat = 0; repeat < 25; ++repeat) {
    for (int n : threads) {
      const auto many = grads(n);
      for (std::size_t k = 0; k < one.size(); ++k)
        worst = std::max(worst, tgtest::max_abs_diff(one[k], many[k]));
    }
  }
  return worst;
}

TEST_CASE("linear's backward with 2 threads: dX and dW side by side, also when X is also W or b") {
  // linear(v, v, b): dX and dW add into the same gradient, which must not be written by two
  // threads at once (64 x 64 x 64 multiply-adds: large enough to be split).
  CHECK(worst_tied_linear({randn<float>({64, 64}, 7, 0.1), randn<float>({64}, 8)}, 0, 0, 1, {2, 3}) < 1e-5);
  // linear(u, W, u), u a vector: dX and db add into one gradient; they run on one thread, dW on
  // the other (512 x 512 multiply-adds: large enough to go side by side).
  CHECK(worst_tied_linear({randn<float>({512}, 12, 0.1), randn<float>({512, 512}, 13, 0.05)}, 0, 1, 0, {2}) <
        1e-5);
  // The side-by-side products give each product's bits of a call made alone, on tapegrad's kernels.
  tg::set_gemm_backend(tg::GemmBackend::kOwn);
  const xt::xarray<float> x = randn<float>({128, 96}, 9), w = randn<float>({80, 96}, 10, 0.05),
                          bb = randn<float>({80}, 11);
  const auto alone = linear_step(x, w, bb);
  {
    ThreadsScope scope(2);
    const auto two = linear_step(x, w, bb);
    for (std::size_t k = 0; k < alone.size(); ++k) CHECK(bitwise_equal(alone[k], two[k]));
  }
  tg::set_gemm_backend(tg::GemmBackend::kAuto);
}

TEST_CASE("cross_entropy gives the same bits for any thread count (rows split, summed in order)") {
  // 301 rows of 7 classes (blocks of 146 rows or more: 2 blocks), and (5, 9, 60): 300 positions
  // of 9 classes with the class dim in the middle. Ignored targets, smoothing, every reduction.
  for (const tg::Shape& shape : {tg::Shape{301, 7}, tg::Shape{5, 9, 60}}) {
    const std::size_t classes = shape[1], rows = shape[0] * (shape.size() == 3 ? shape[2] : 1);
    const xt::xarray<double> x = randn<double>(shape, 21, 3.0);
    std::vector<std::int64_t> y(rows);
    for (std::size_t i = 0; i < rows; ++i) y[i] = i % 11 == 3 ? -100 : std::int64_t((i * 5) % classes);
    xt::xarray<std::int64_t> yt =
        xt::zeros<std::int64_t>(shape.size() == 3 ? tg::Shape{shape[0], shape[2]} : tg::Shape{rows});
    std::copy(y.begin(), y.end(), yt.data());
    for (const tg::Reduction reduction : {tg::Reduction::Mean, tg::Reduction::Sum, tg::Reduction::None}) {
      tg::CrossEntropyOptions o;
      o.reduction = reduction;
      o.label_smoothing = 0.1;
      auto run = [&](int threads) {
        ThreadsScope scope(threads);
        tg::Tape<double> t;
        auto xv = t.input(x, true);
        auto loss = tg::cross_entropy(xv, yt, o);
        t.backward(tg::sum(tg::mul(loss, loss)));
        return std::vector<xt::xarray<double>>{t.value(loss), t.grad(xv)};
      };
      const auto one = run(1);
      for (int threads : {2, 3}) {
        const auto many = run(threads);
        INFO("shape " << tg::shape_str(shape) << ", reduction " << int(reduction) << ", threads " << threads);
        for (std::size_t k = 0; k < one.size(); ++k) {
          REQUIRE(one[k].shape() == many[k].shape());
          CHECK(std::memcmp(one[k].data(), many[k].data(), one[k].size() * sizeof(double)) == 0);
        }
      }
    }
  }
}

TEST_CASE("an MLP training step with 2 threads matches the 1-thread step") {
  auto train = [](int threads) {
    ThreadsScope scope(threads);
    tg::Generator gen(5);
    tg::Sequential<float> net;
    net.emplace_back<tg::Linear<float>>(64, 256, tg::LinearOptions(), gen);
    net.emplace_back<tg::LayerNorm<float>>(tg::Shape{256});
    net.emplace_back<tg::Tanh<float>>();
    net.emplace_back<tg::Linear<float>>(256, 10, tg::LinearOptions(), gen);
    tg::SGD<float> opt(net.parameters(), 0.05);
    const xt::xarray<float> x = randn<float>({256, 64}, 6);
    std::vector<std::int64_t> y(256);
    for (std::size_t i = 0; i < 256; ++i) y[i] = std::int64_t(i % 10);
    tg::Tape<float> t;
    for (int step = 0; step < 5; ++step) {
      t.reset();
      auto loss = tg::cross_entropy(net(t, t.input(x)), y);
      opt.zero_grad();
      t.backward(loss);
      opt.step();
    }
    return xt::xarray<float>(net.parameters()[0]->value());
  };
  CHECK(tgtest::max_abs_diff(train(1), train(2)) < 1e-5);
}

TEST_CASE("elementwise activations give bitwise identical values and gradients for any thread count") {
  const xt::xarray<float> x = randn<float>({100003}, 9, 3.0);
  auto run = [&](int threads) {
    ThreadsScope scope(threads);
    tg::Tape<float> t;
    auto xv = t.input(x, true);
    auto y = tg::tanh(tg::sigmoid(xv));
    t.backward(tg::sum(y * y));
    return std::vector<xt::xarray<float>>{y.value(), t.grad(xv)};
  };
  const auto one = run(1);
  for (int threads : {2, 3}) {
    const auto many = run(threads);
    INFO("threads " << threads);
    CHECK(bitwise_equal(one[0], many[0]));
    CHECK(bitwise_equal(one[1], many[1]));
  }
}
