// DistributedSampler (data/distributed_sampler.hpp): PyTorch's arithmetic, and disjoint shards
// across the ranks of test_mpi.
#include <algorithm>
#include <string>
#include <vector>

#include "expect_error.hpp"
#include "tapegrad/data/distributed_sampler.hpp"
#include "tapegrad/dist.hpp"

namespace tg = tapegrad;
namespace dist = tapegrad::dist;
using tgtest::expect_error;
using Indices = std::vector<std::size_t>;

TEST_CASE("DistributedSampler: num_samples, total_size and every rank's indices are PyTorch's (110 cases)") {
  const auto cases = tgtest::load_fixture("distributed_sampler.json").at("cases");
  REQUIRE(cases.size() == 110);
  for (const auto& c : cases) {
    const auto n = c.at("n").get<std::size_t>();
    const int r = c.at("num_replicas").get<int>();
    const bool drop_last = c.at("drop_last").get<bool>();
    for (int rank = 0; rank < r; ++rank) {
      INFO("N " << n << ", R " << r << ", rank " << rank << ", drop_last " << drop_last);
      const tg::DistributedSampler s(n, r, rank, /*shuffle=*/false, 0, drop_last);
      CHECK(s.num_samples() == c.at("num_samples").get<std::size_t>());
      CHECK(s.total_size() == c.at("total_size").get<std::size_t>());
      CHECK(s.indices() == c.at("indices").at(static_cast<std::size_t>(rank)).get<Indices>());
    }
  }
}

TEST_CASE("DistributedSampler: padding repeats the start, drop_last cuts the tail (hand-computed)") {
  const auto shard = [](std::size_t n, int r, int rank, bool drop_last) {
    return tg::DistributedSampler(n, r, rank, false, 0, drop_last).indices();
  };
  // N = 10, R = 4: ceil(10 / 4) = 3 each, total 12, padded with indices 0 and 1
  CHECK(shard(10, 4, 0, false) == Indices{0, 4, 8});
  CHECK(shard(10, 4, 1, false) == Indices{1, 5, 9});
  CHECK(shard(10, 4, 2, false) == Indices{2, 6, 0});
  CHECK(shard(10, 4, 3, false) == Indices{3, 7, 1});
  // drop_last: ceil((10 - 4) / 4) = 2 each, total 8: 8 and 9 are left out
  CHECK(shard(10, 4, 0, true) == Indices{0, 4});
  CHECK(shard(10, 4, 3, true) == Indices{3, 7});
  CHECK(tg::DistributedSampler(10, 4, 3, false, 0, true).total_size() == 8);
  // N = 3, R = 8: 1 each, total 8; the padding of 5 is longer than the dataset: 0 1 2 0 1 2 0 1
  CHECK(shard(3, 8, 5, false) == Indices{2});
  CHECK(shard(3, 8, 7, false) == Indices{1});
  CHECK(tg::DistributedSampler(3, 8, 0, false, 0, true).size() == 0);  // ceil(-5 / 8) = 0
  // R divides N: no padding, nothing dropped, with or without drop_last
  CHECK(shard(12, 4, 2, true) == Indices{2, 6, 10});
  CHECK(shard(12, 4, 2, false) == Indices{2, 6, 10});
  CHECK(shard(0, 2, 1, false).empty());
}

TEST_CASE(
    "DistributedSampler: shuffled shards are disjoint, cover the data, change with the epoch, repeat with the seed") {
  const std::size_t n = 10;
  const int r = 4;
  std::vector<Indices> epoch0, epoch1;
  for (int rank = 0; rank < r; ++rank) {
    tg::DistributedSampler s(n, r, rank, /*shuffle=*/true, /*seed=*/7);
    epoch0.push_back(s.indices());
    s.set_epoch(1);
    CHECK(s.epoch() == 1);
    epoch1.push_back(s.indices());
    CHECK(s.indices() == epoch1.back());  // the same epoch again: the same shard
    s.set_epoch(0);
    CHECK(s.indices() == epoch0.back());
  }
  CHECK(epoch0 != epoch1);
  for (const auto* shards : {&epoch0, &epoch1}) {
    std::vector<int> seen(n, 0);
    for (const auto& sh : *shards) {
      CHECK(sh.size() == 3);
      for (const std::size_t i : sh) ++seen.at(i);
    }
    // 12 slots: every index once, two of them twice (the padding)
    CHECK(std::count(seen.begin(), seen.end(), 1) == 8);
    CHECK(std::count(seen.begin(), seen.end(), 2) == 2);
  }
  CHECK(tg::DistributedSampler(n, r, 0, true, 8).indices() != epoch0[0]);  // another seed
}

TEST_CASE("DistributedSampler: the ranks of the job get disjoint shards by default") {
  const int r = dist::rank(), n = dist::world_size();
  const std::size_t size = 4 * static_cast<std::size_t>(n) + 1;  // not divisible for n > 1
  tg::DistributedSampler s(size, std::nullopt, std::nullopt, true, 3, /*drop_last=*/true);
  CHECK(s.rank() == r);
  CHECK(s.num_replicas() == n);
  CHECK(s.size() == (n == 1 ? size : 4));
  s.set_epoch(2);
  std::vector<double> counts(size, 0.0);
  for (const std::size_t i : s.indices()) counts.at(i) += 1;
  dist::allreduce(counts.data(), counts.size());
  CHECK(*std::max_element(counts.begin(), counts.end()) == 1.0);  // disjoint
  CHECK(std::count(counts.begin(), counts.end(), 1.0) == static_cast<long>(s.total_size()));
}

TEST_CASE(
    "DistributedSampler with a rank outside [0, R - 1] or fewer than 1 replica is a ValueError naming them") {
  expect_error<tg::ValueError>([] { tg::DistributedSampler(10, 4, 4); },
                               {"Invalid rank 4", "rank should be in the interval [0, 3]"});
  expect_error<tg::ValueError>([] { tg::DistributedSampler(10, 4, -1); }, {"Invalid rank -1"});
  expect_error<tg::ValueError>([] { tg::DistributedSampler(10, 0, 0); },
                               {"num_replicas", "at least 1, got 0"});
}
