#pragma once
// Section 9's measurement of communication: every MPI_Allreduce and MPI_Bcast this process makes
// (tapegrad::dist's collectives, so DistributedDataParallel's gradient buckets and buffer
// broadcasts and SyncBatchNorm's statistics) counted in bytes and timed, through MPI's standard
// profiling interface: the lab defines MPI_Allreduce and MPI_Bcast, which count and call
// PMPI_Allreduce and PMPI_Bcast (comm_profile.cpp). Built without MPI there is nothing to count:
// available() is false and the counters stay zero.
#include <cstdint>

namespace lab::comm_profile {

struct Counters {
  std::uint64_t allreduce_bytes = 0;  // count * datatype size, per call, summed
  std::uint64_t bcast_bytes = 0;
  std::uint64_t calls = 0;  // MPI_Allreduce and MPI_Bcast calls
  double seconds = 0;       // wall time inside those calls
};

bool available();
// Counting happens between start() (which zeroes the counters) and stop(). One thread only (the
// MPI thread: tapegrad::dist is MPI_THREAD_FUNNELED).
void start();
Counters stop();

}  // namespace lab::comm_profile
