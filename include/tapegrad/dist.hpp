#pragma once
// tapegrad::dist: the processes of an MPI job (torch.distributed's core, on MPI). One process
// per rank, started by mpirun:
//
//   int main(int argc, char** argv) {
//     tapegrad::dist::Context mpi(argc, argv);          // MPI_Init_thread ... MPI_Finalize
//     xt::xarray<float> g = ...;
//     tapegrad::dist::allreduce(g, tapegrad::dist::ReduceOp::mean);   // g is now the mean over ranks
//   }
//   $ mpirun -np 4 ./train          (as root in a container: --allow-run-as-root --oversubscribe)
//
// Built without MPI (-DTAPEGRAD_MPI=OFF, or no MPI found), this header is the same and every
// function works as in a world of one process: rank 0 of 1, barrier and allreduce leave their
// arguments as they are (a mean over one rank is the value), broadcast from rank 0 does nothing.
// The same user code compiles and runs either way; built_with_mpi() tells which.
//
// Collectives (barrier, allreduce, broadcast) must be called by every rank of the group, in the
// same order, with arrays of the same shape: that is MPI's rule. tapegrad checks the shapes
// collectively before it moves data: each rank contributes a small header (element count, rank
// count of the shape, a hash of the dims, the root) to one extra small allreduce, so a mismatch
// is a ShapeError thrown on EVERY rank, naming each rank's shape, instead of a hang or silently
// mixed data. (Raw spans: the element counts, unless Verify::none is asked for.) A rank that
// calls a different collective, or none, cannot be detected and hangs the job, as in any MPI
// program.
//
// Threads: MPI is initialised at MPI_THREAD_FUNNELED: call tapegrad::dist from the thread that
// created the Context. MPI may be initialised by the user instead (MPI_Init before any
// Context): a Context then neither initialises nor finalises it, and tapegrad::dist works as
// long as MPI is initialised.
//
// Errors: StateError when MPI is not (or no longer) initialised; ValueError for a root outside
// the group; ShapeError for shapes that differ across ranks; DistError when MPI itself fails.
// When a Context initialised MPI, it sets MPI_ERRORS_RETURN on the world and self
// communicators, so MPI failures become DistErrors naming MPI's message; when the user
// initialised MPI, its error handler stays (MPI's default aborts the job).
#include <cstddef>
#include <string>
#include <string_view>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/error.hpp"

namespace tapegrad::dist {

// True when tapegrad was built with MPI (TAPEGRAD_MPI).
bool built_with_mpi() noexcept;
// True while MPI is initialised and not finalised (by a Context or by the user). Without MPI:
// always true (the world of one needs no initialisation).
bool initialized() noexcept;

// What an MPI launcher (mpirun, mpiexec) told this process through its environment, readable
// before MPI is initialised and in a build without MPI: world_size is 0 when the process was not
// started by a launcher. A program that also runs on its own creates a Context only when it was
// started that way (MPI_Init without a launcher makes a "singleton" job, slow to start and
// unable to start an mpirun of its own). Read from OpenMPI's OMPI_COMM_WORLD_SIZE and
// OMPI_COMM_WORLD_LOCAL_SIZE, else MPICH's PMI_SIZE and MPI_LOCALNRANKS; local_size is the
// number of ranks on this machine (world_size when the launcher does not say).
struct Launch {
  int world_size = 0;
  int local_size = 0;
};
Launch launch_environment() noexcept;
// True for the name of a variable an MPI launcher sets in its processes' environment (OpenMPI's
// OMPI_*, OPAL_*, ORTE_*, PMIx's PMIX_*, MPICH's and Hydra's PMI_*, HYDRA_*, MPI_LOCAL*). A rank
// that starts an mpirun of its own leaves them out of the child's environment: the child would
// otherwise take itself for a rank of this job.
bool launcher_variable(std::string_view name) noexcept;

// Initialises MPI (MPI_Init_thread at MPI_THREAD_FUNNELED) unless it already is, and finalises
// it on destruction if it initialised it. Not copyable. Creating one after MPI was finalised is a
// StateError (MPI cannot be initialised twice in a process). Without MPI: does nothing.
class Context {
 public:
  Context();
  Context(int& argc, char**& argv);
  // Out of line: with MPI it finalises; without, it is empty (hence the NOLINT for that build).
  ~Context();  // NOLINT(performance-trivially-destructible)
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int rank() const;
  int world_size() const;
  // True when this Context initialised MPI (and finalises it).
  bool owns_mpi() const { return owns_; }

 private:
  void init(int* argc, char*** argv);
  bool owns_ = false;
};

// The processes a collective runs over: every rank of the job (MPI_COMM_WORLD), or this process
// alone (MPI_COMM_SELF: a world of one inside an MPI job, for a single-process reference run
// next to a distributed one; torch: a new_group of one rank). Cheap to copy.
class Group {
 public:
  static Group world() { return Group(Kind::world); }
  static Group self() { return Group(Kind::self); }
  // This process's rank in the group and the number of ranks (StateError when MPI is not initialised).
  int rank() const;
  int size() const;
  bool is_world() const { return kind_ == Kind::world; }
  bool operator==(const Group& o) const { return kind_ == o.kind_; }
  bool operator!=(const Group& o) const { return kind_ != o.kind_; }

 private:
  enum class Kind { world, self };
  explicit Group(Kind k) : kind_(k) {}
  Kind kind_;
};

// torch.distributed.get_rank() / get_world_size().
inline int rank() { return Group::world().rank(); }
inline int world_size() { return Group::world().size(); }

// How a rank waits in a barrier: spin (MPI's own busy polling: the lowest latency) or sleep (a
// non-blocking barrier polled every 0.1 to 10 ms: for a rank that may wait long while other
// processes compute on the same cores, which a spinning rank would slow down).
enum class Wait { spin, sleep };
void barrier(Group group = Group::world(), Wait wait = Wait::spin);

// Ends every process of the job at once, for an error on one rank that the others cannot learn of
// (they would wait in their next collective forever): writes "tapegrad::dist: rank R of N:
// <message>" to stderr, then MPI_Abort on the world with exit_code, which mpirun reports and
// returns. Without MPI, or when MPI is not initialised: the message, then std::_Exit(exit_code).
[[noreturn]] void abort(const std::string& message, int exit_code = 1) noexcept;

// ReduceOp::mean is the sum divided by the group's size (torch's ReduceOp.AVG).
enum class ReduceOp { sum, mean, max, min };
// Verify::counts checks collectively that every rank passes the same element count (one small
// extra allreduce); Verify::none trusts the caller (a hot loop whose sizes were checked once).
enum class Verify { counts, none };

// In place: on return every rank holds the reduction over the group, element by element (float
// or double; the sum is MPI's, in T). The shapes must be equal on every rank (checked, see above).
template <class T>
void allreduce(xt::xarray<T>& a, ReduceOp op = ReduceOp::sum, Group group = Group::world());
// The same over n values at data (a null data with n = 0 is allowed).
template <class T>
void allreduce(T* data, std::size_t n, ReduceOp op = ReduceOp::sum, Group group = Group::world(),
               Verify verify = Verify::counts);
// One value, returned: e.g. the largest difference between ranks, allreduce_value(d, ReduceOp::max).
template <class T>
T allreduce_value(T value, ReduceOp op = ReduceOp::sum, Group group = Group::world());

// torch.distributed.broadcast: on return every rank's array holds the root's values. The shapes
// must be equal on every rank (checked, as for allreduce; the root too: a ValueError when it is
// outside the group).
template <class T>
void broadcast(xt::xarray<T>& a, int root = 0, Group group = Group::world());
template <class T>
void broadcast(T* data, std::size_t n, int root = 0, Group group = Group::world(),
               Verify verify = Verify::counts);

}  // namespace tapegrad::dist
