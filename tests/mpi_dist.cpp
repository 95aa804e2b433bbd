// tapegrad::dist's collectives (include/tapegrad/dist.hpp), run on every rank of test_mpi
// (tests/mpi_main.cpp): under mpirun with 2 and 4 ranks, and as a world of one without MPI.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "expect_error.hpp"
#include "tapegrad/dist.hpp"

namespace tg = tapegrad;
namespace dist = tapegrad::dist;
using tgtest::expect_error;

TEST_CASE("dist: rank and world size, the self group, and barrier") {
  const int r = dist::rank(), n = dist::world_size();
  CHECK(r >= 0);
  CHECK(r < n);
  CHECK(dist::initialized());
  CHECK(dist::Group::self().size() == 1);
  CHECK(dist::Group::self().rank() == 0);
  CHECK(dist::Group::world().rank() == r);
  CHECK(dist::Group::world() != dist::Group::self());
  // every rank counts itself once
  CHECK(dist::allreduce_value(1.0, dist::ReduceOp::sum) == static_cast<double>(n));
  dist::barrier();
  dist::barrier(dist::Group::self());
  if (!dist::built_with_mpi()) CHECK(n == 1);
}

TEST_CASE("dist: abort in a world of one writes its message and exits with the code") {
  // Under MPI, abort ends the whole job: test_lab's "A lab rank that fails ends the whole job" runs it.
  if (dist::built_with_mpi()) return;
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipe_fds[1], 2);
    dist::abort("the reason", 3);
  }
  close(pipe_fds[1]);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  CHECK(err == "tapegrad::dist: rank 0 of 1: the reason\n");
}

TEST_CASE(
    "dist: a sleeping barrier waits for the last rank, and the launcher's environment names the world") {
  const int r = dist::rank(), n = dist::world_size();
  // Rank n-1 arrives 50 ms late: nobody may leave before it arrived. Each rank stamps its arrival
  // and departure on the steady clock (CLOCK_MONOTONIC: one clock for every process of the
  // machine ctest runs on); the latest arrival must come before the earliest departure.
  const auto now = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  dist::barrier();  // a common start
  if (r == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double arrived = now();
  dist::barrier(dist::Group::world(), dist::Wait::sleep);
  const double left = now();
  const double last_arrival = dist::allreduce_value(arrived, dist::ReduceOp::max);
  const double first_departure = dist::allreduce_value(left, dist::ReduceOp::min);
  if (n > 1) CHECK(first_departure >= last_arrival);
  dist::barrier(dist::Group::self(), dist::Wait::sleep);

  const dist::Launch launch = dist::launch_environment();
  if (dist::built_with_mpi()) {  // test_mpi runs under mpirun
    CHECK(launch.world_size == n);
    CHECK(launch.local_size >= 1);
    CHECK(launch.local_size <= n);
  } else {
    CHECK(launch.world_size == 0);  // ctest starts the world of one directly
    CHECK(launch.local_size == 0);
  }
}

TEST_CASE("dist: launcher_variable knows the launchers' variables and nothing else") {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "OMPI_MCA_btl", "PMIX_RANK", "PMI_SIZE", "OPAL_PREFIX",
                           "ORTE_HNP", "HYDRA_PROXY", "MPI_LOCALNRANKS"}) {
    INFO(name);
    CHECK(dist::launcher_variable(name));
  }
  for (const char* name :
       {"", "PATH", "HOME", "OMPI", "PMI", "MPI_LOCA", "OMP_NUM_THREADS", "XOMPI_A", "ompi_x"}) {
    INFO(name);
    CHECK_FALSE(dist::launcher_variable(name));
  }
}

TEMPLATE_TEST_CASE("dist: allreduce sums, averages, takes the max and min over the ranks", "", float,
                   double) {
  const int r = dist::rank(), n = dist::world_size();
  const double sum_of_ranks = n * (n - 1) / 2.0;
  xt::xarray<TestType> a = xt::xarray<TestType>::from_shape({2, 3});
  const auto fill = [&] {
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<TestType>(10 * i + r);
  };
  fill();
  dist::allreduce(a);  // sum
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(a.data()[i] == static_cast<TestType>(10.0 * i * n + sum_of_ranks));
  fill();
  dist::allreduce(a, dist::ReduceOp::mean);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a.data()[i] == Approx(10.0 * i + sum_of_ranks / n));
  fill();
  dist::allreduce(a.data(), a.size(), dist::ReduceOp::max);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a.data()[i] == static_cast<TestType>(10 * i + n - 1));
  fill();
  dist::allreduce(a.data(), a.size(), dist::ReduceOp::min, dist::Group::world(), dist::Verify::none);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a.data()[i] == static_cast<TestType>(10 * i));
  // the self group: a world of one inside the job
  fill();
  dist::allreduce(a, dist::ReduceOp::sum, dist::Group::self());
  CHECK(a(1, 2) == static_cast<TestType>(50 + r));  // element 5
  CHECK(dist::allreduce_value(static_cast<TestType>(r), dist::ReduceOp::max) == static_cast<TestType>(n - 1));
  // nothing to reduce
  dist::allreduce(static_cast<TestType*>(nullptr), 0);
}

TEMPLATE_TEST_CASE("dist: broadcast copies the root's array to every rank, from every root", "", float,
                   double) {
  const int r = dist::rank(), n = dist::world_size();
  for (int root = 0; root < n; ++root) {
    xt::xarray<TestType> a = {{TestType(r), TestType(2 * r)}, {TestType(3), TestType(r + 0.5)}};
    dist::broadcast(a, root);
    const xt::xarray<TestType> want = {{TestType(root), TestType(2 * root)},
                                       {TestType(3), TestType(root + 0.5)}};
    CHECK((a == want));
    TestType raw[3] = {TestType(r), TestType(r), TestType(-r)};
    dist::broadcast(raw, 3, root);
    CHECK(raw[0] == TestType(root));
    CHECK(raw[2] == TestType(-root));
  }
}

TEST_CASE(
    "dist: arrays whose shapes or counts differ across ranks are a ShapeError on every rank naming them") {
  const int r = dist::rank(), n = dist::world_size();
  // Same element count, different shapes on rank 1: caught by the shape, not only the count.
  xt::xarray<float> a = xt::zeros<float>(r == 1 ? tg::Shape{3, 2} : tg::Shape{2, 3});
  a.fill(float(r + 1));
  if (n > 1) {
    expect_error<tg::ShapeError>([&] { dist::allreduce(a); },
                                 {"dist::allreduce", "rank 0 has shape (2, 3)", "rank 1 has shape (3, 2)",
                                  std::to_string(n) + " ranks"});
    CHECK(a(0, 0) == float(r + 1));  // nothing moved
    expect_error<tg::ShapeError>([&] { dist::broadcast(a, 0); },
                                 {"dist::broadcast", "rank 0 has shape (2, 3)", "rank 1 has shape (3, 2)"});
    CHECK(a(0, 0) == float(r + 1));
    std::vector<double> raw(static_cast<std::size_t>(4 + r), 1.0);
    expect_error<tg::ShapeError>(
        [&] { dist::allreduce(raw.data(), raw.size()); },
        {"the same element count", "rank 0 has 4 elements", "rank 1 has 5 elements"});
    CHECK(raw[0] == 1.0);
  } else {
    dist::allreduce(a);  // a world of one: one shape, nothing to disagree with
    CHECK(a(0, 0) == 1.0f);
  }
}

TEST_CASE(
    "dist: a broadcast root outside the group, or roots that differ across ranks, is an error on every rank") {
  const int r = dist::rank(), n = dist::world_size();
  xt::xarray<double> a = {1.0, 2.0};
  expect_error<tg::ValueError>(
      [&] { dist::broadcast(a, n); },
      {"dist::broadcast", "root " + std::to_string(n), "of " + std::to_string(n) + " rank"});
  expect_error<tg::ValueError>([&] { dist::broadcast(a, -1); }, {"root -1"});
  expect_error<tg::ValueError>(
      [&] { dist::broadcast(a.data(), 2, n, dist::Group::world(), dist::Verify::none); },
      {"root " + std::to_string(n)});
  expect_error<tg::ValueError>([&] { dist::broadcast(a, 1, dist::Group::self()); }, {"self group of 1"});
  if (n > 1) {
    expect_error<tg::ShapeError>(
        [&] { dist::broadcast(a, r == 0 ? 0 : 1); },
        {"the same root", "rank 0 has shape (2) and root 0", "rank 1 has shape (2) and root 1"});
  }
  CHECK(a(1) == 2.0);
}
