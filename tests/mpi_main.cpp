// The main of test_mpi, the tests of tapegrad::dist, run by ctest under mpirun (-np 2 and 4;
// tests/CMakeLists.txt) and, built without MPI, as one process (a world of one).
//
// Every rank runs the whole Catch2 session: the tests are collective (each rank makes the same
// collective calls in the same order). Rank 0 reports to the console; the other ranks report
// into a file of their own, which is printed (each line prefixed with the rank) only when that
// rank had a failure. After the session the ranks' failure counts are summed, so the process of
// EVERY rank exits non-zero when any rank failed, and mpirun (and ctest) fail.
//
// A test that fails on one rank only, and so skips a collective that the others make, would
// hang them: the tests use CHECK (which continues) around collectives, not REQUIRE, and ctest's
// timeout ends a hung run.
#define CATCH_CONFIG_RUNNER
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <catch2/catch.hpp>

#include "tapegrad/dist.hpp"

namespace {

void print_rank_log(const std::string& path, int rank) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) std::cerr << "[rank " << rank << "] " << line << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  namespace dist = tapegrad::dist;
  dist::Context context(argc, argv);
  const int rank = context.rank();
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv)) return rc;
  std::string log;
  if (rank != 0) {
    log = (std::filesystem::temp_directory_path() /
           ("tapegrad-test-mpi-" + std::to_string(::getpid()) + "-rank" + std::to_string(rank) + ".log"))
              .string();
    session.configData().outputFilename = log;
  }
  const int failed = session.run();
  const double failed_anywhere = dist::allreduce_value(static_cast<double>(failed), dist::ReduceOp::sum);
  if (rank != 0) {
    if (failed) print_rank_log(log, rank);
    std::remove(log.c_str());
  }
  dist::barrier();
  if (rank == 0 && failed_anywhere > failed) {
    std::cerr << "test_mpi: " << failed_anywhere - failed << " failed test case(s) on ranks other than 0 ("
              << context.world_size() << " ranks; their reports are above, prefixed with the rank)\n";
  }
  return failed_anywhere > 0 ? 1 : 0;
}
