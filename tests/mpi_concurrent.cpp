// SyncBatchNorm and DistributedDataParallel in eval mode on threads sharing one model give the
// single-thread bits (the concurrent-inference promise of nn/module.hpp). These modules need MPI,
// so their case lives here rather than in test_concurrent_inference, which lists them as covered.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "support.hpp"
#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;

namespace {

template <class T>
bool same_bits_on_threads(tg::Module<T>& m, const xt::xarray<T>& x) {
  m.eval();
  tg::Tape<T> t0;
  const xt::xarray<T> ref = m(t0, t0.input(x)).value();
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&m, &x, &ref, &ok, k] {
      bool all = true;
      for (int rep = 0; rep < 20; ++rep) {
        tg::Tape<T> t;
        const xt::xarray<T> y = m(t, t.input(x)).value();
        all = all && y.shape() == ref.shape() && std::memcmp(y.data(), ref.data(), y.size() * sizeof(T)) == 0;
      }
      ok[static_cast<std::size_t>(k)] = all ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  return ok == std::vector<int>(4, 1);
}

}  // namespace

TEST_CASE(
    "SyncBatchNorm and DistributedDataParallel give the single-thread bits when threads share them in eval mode") {
  const auto x = tgtest::randn<float>({16, 6}, 3);
  tg::SyncBatchNorm<float> bn(6);
  CHECK(same_bits_on_threads<float>(bn, x));
  tg::DistributedDataParallel<float> ddp(std::make_shared<tg::Linear<float>>(6, 4));
  CHECK(same_bits_on_threads<float>(ddp, x));
}
