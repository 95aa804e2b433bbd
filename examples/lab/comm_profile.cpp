#include "comm_profile.hpp"

#include <chrono>

#ifdef TAPEGRAD_LAB_MPI
#include <mpi.h>
#endif

namespace lab::comm_profile {

namespace {
bool g_on = false;
Counters g_counters;
}  // namespace

#ifdef TAPEGRAD_LAB_MPI

bool available() { return true; }

namespace {
std::uint64_t bytes_of(int count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  return static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(size);
}

// Runs `call` (a PMPI function), adding its time and `bytes` to `into` when counting.
template <class F>
int counted(std::uint64_t bytes, std::uint64_t& into, F call) {
  if (!g_on) return call();
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = call();
  g_counters.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  into += bytes;
  ++g_counters.calls;
  return rc;
}
}  // namespace

#else

bool available() { return false; }

#endif

void start() {
  g_counters = Counters{};
  g_on = true;
}

Counters stop() {
  g_on = false;
  return g_counters;
}

}  // namespace lab::comm_profile

#ifdef TAPEGRAD_LAB_MPI
// The profiling interface: these definitions take the place of the MPI library's for the whole
// program (tapegrad's static library included); the real work is PMPI_*'s.
extern "C" int MPI_Allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op,
                             MPI_Comm comm) {
  using namespace lab::comm_profile;
  return counted(bytes_of(count, type), g_counters.allreduce_bytes,
                 [&] { return PMPI_Allreduce(send, recv, count, type, op, comm); });
}

extern "C" int MPI_Bcast(void* buffer, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  using namespace lab::comm_profile;
  return counted(bytes_of(count, type), g_counters.bcast_bytes,
                 [&] { return PMPI_Bcast(buffer, count, type, root, comm); });
}
#endif
