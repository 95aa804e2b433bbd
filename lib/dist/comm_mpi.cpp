// tapegrad::dist on MPI (built with TAPEGRAD_MPI; comm_local.cpp is the world of one).
#ifdef TAPEGRAD_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "comm_common.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/dist.hpp"

namespace tapegrad::dist {

namespace {

MPI_Comm comm_of(const Group& g) { return g.is_world() ? MPI_COMM_WORLD : MPI_COMM_SELF; }
using detail::group_name;

void require_mpi(const char* op) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) return;
  throw StateError(std::string("dist::") + op + ": MPI is " +
                   (fin ? "already finalised" : "not initialised") +
                   ": create a tapegrad::dist::Context first (it initialises MPI), or call MPI_Init");
}

void check_mpi(int rc, const char* op, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw DistError(std::string("dist::") + op + ": " + call +
                  " failed: " + std::string(msg, static_cast<std::size_t>(len)));
}

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::min:
      return MPI_MIN;
    default:
      return MPI_SUM;
  }
}

// MPI counts are ints: longer buffers go in pieces.
constexpr std::size_t kChunk = std::size_t(1) << 30;

// ---- the collective shape check --------------------------------------------------------------
// What each rank contributes: the element count, the number of dims (-1 for a raw span), a hash
// of the dims, the root (0 for allreduce).
using Header = std::array<long long, 4>;

Header header_of(std::size_t n, const Shape* shape, bool has_root, int root) {
  unsigned long long h = 1469598103934665603ull;
  if (shape) {
    for (const std::size_t d : *shape) h = (h ^ static_cast<unsigned long long>(d)) * 1099511628211ull;
  }
  return {static_cast<long long>(n), shape ? static_cast<long long>(shape->size()) : -1,
          static_cast<long long>(h >> 2), has_root ? root : 0};
}

// One allreduce of (h, -h) with MAX: true when every rank sent the same header.
bool same_on_every_rank(const Header& h, MPI_Comm comm, const char* op) {
  std::array<long long, 8> buf{};
  for (std::size_t i = 0; i < 4; ++i) {
    buf[i] = h[i];
    buf[4 + i] = -h[i];
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf.data(), 8, MPI_LONG_LONG, MPI_MAX, comm), op, "MPI_Allreduce");
  for (std::size_t i = 0; i < 4; ++i) {
    if (buf[i] != -buf[4 + i]) return false;
  }
  return true;
}

// After a mismatch (every rank knows of it): every rank's count, shape (up to 6 dims) and root,
// gathered to build the same message everywhere.
constexpr std::size_t kDescribed = 9;  // count, ndim, 6 dims, root
std::string describe_ranks(std::size_t n, const Shape* shape, bool has_root, int root, MPI_Comm comm,
                           const char* op) {
  std::array<long long, kDescribed> mine{};
  mine[0] = static_cast<long long>(n);
  mine[1] = shape ? static_cast<long long>(shape->size()) : -1;
  for (std::size_t d = 0; shape && d < std::min<std::size_t>(shape->size(), 6); ++d) {
    mine[2 + d] = static_cast<long long>((*shape)[d]);
  }
  mine[8] = root;
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<long long> all(kDescribed * static_cast<std::size_t>(size));
  check_mpi(
      MPI_Allgather(mine.data(), kDescribed, MPI_LONG_LONG, all.data(), kDescribed, MPI_LONG_LONG, comm), op,
      "MPI_Allgather");
  std::string out;
  for (int r = 0; r < size && r < 16; ++r) {
    const long long* e = all.data() + kDescribed * static_cast<std::size_t>(r);
    out += (r ? ", rank " : "rank ") + std::to_string(r) + " has ";
    if (e[1] < 0) {
      out += std::to_string(e[0]) + " elements";
    } else {
      Shape s(static_cast<std::size_t>(std::min<long long>(e[1], 6)));
      for (std::size_t d = 0; d < s.size(); ++d) s[d] = static_cast<std::size_t>(e[2 + d]);
      out += "shape " + shape_str(s) + (e[1] > 6 ? " (first 6 dims)" : "");
    }
    if (has_root) out += " and root " + std::to_string(e[8]);
  }
  return out + (size > 16 ? ", ..." : "");
}

// The collective check before a collective moves data: the same count, shape and root on every
// rank, and the root inside the group (has_root: a broadcast). Throws the same error on every rank.
void verify(const char* op, const Group& g, std::size_t n, const Shape* shape, bool has_root, int root) {
  MPI_Comm comm = comm_of(g);
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (!same_on_every_rank(header_of(n, shape, has_root, root), comm, op)) {
    const std::string ranks = describe_ranks(n, shape, has_root, root, comm, op);
    const std::string what = std::string("dist::") + op + ": the " + std::to_string(size) + " ranks of the " +
                             group_name(g) + " group must pass ";
    throw ShapeError(what + (shape ? "arrays of one shape" : "the same element count") +
                     (has_root ? " and the same root" : "") + ", but " + ranks);
  }
  if (has_root) detail::check_root(op, root, g, size);
}

template <class T>
void allreduce_raw(const char* op, T* data, std::size_t n, ReduceOp rop, const Group& g) {
  MPI_Comm comm = comm_of(g);
  for (std::size_t i = 0; i < n; i += kChunk) {
    const int k = static_cast<int>(std::min(kChunk, n - i));
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + i, k, mpi_type<T>(), mpi_op(rop), comm), op,
              "MPI_Allreduce");
  }
  if (rop != ReduceOp::mean) return;
  const T size = static_cast<T>(g.size());
  for (std::size_t i = 0; i < n; ++i) data[i] /= size;
}

template <class T>
void broadcast_raw(const char* op, T* data, std::size_t n, int root, const Group& g) {
  for (std::size_t i = 0; i < n; i += kChunk) {
    const int k = static_cast<int>(std::min(kChunk, n - i));
    check_mpi(MPI_Bcast(data + i, k, mpi_type<T>(), root, comm_of(g)), op, "MPI_Bcast");
  }
}

}  // namespace

bool built_with_mpi() noexcept { return true; }

bool initialized() noexcept {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

Context::Context() { init(nullptr, nullptr); }
Context::Context(int& argc, char**& argv) { init(&argc, &argv); }

void Context::init(int* argc, char*** argv) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (fin) {
    throw StateError(
        "dist::Context: MPI was already finalised in this process and cannot be initialised again: "
        "keep one Context for the program's lifetime");
  }
  if (init) return;  // the user's MPI: neither initialised nor finalised here
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "Context", "MPI_Init_thread");
  owns_ = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
}

Context::~Context() {
  if (!owns_) return;
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

int Context::rank() const { return Group::world().rank(); }
int Context::world_size() const { return Group::world().size(); }

int Group::rank() const {
  require_mpi("rank");
  int r = 0;
  check_mpi(MPI_Comm_rank(comm_of(*this), &r), "rank", "MPI_Comm_rank");
  return r;
}

int Group::size() const {
  require_mpi("world_size");
  int s = 1;
  check_mpi(MPI_Comm_size(comm_of(*this), &s), "world_size", "MPI_Comm_size");
  return s;
}

void barrier(Group group, Wait wait) {
  require_mpi("barrier");
  if (wait == Wait::spin) {
    check_mpi(MPI_Barrier(comm_of(group)), "barrier", "MPI_Barrier");
    return;
  }
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(MPI_Ibarrier(comm_of(group), &request), "barrier", "MPI_Ibarrier");
  auto pause = std::chrono::microseconds(100);
  for (int done = 0;;) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "barrier", "MPI_Test");
    if (done) return;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(10000));
  }
}

void abort(const std::string& message, int exit_code) noexcept {
  int init = 0, fin = 0, r = 0, n = 1;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) {
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
  }
  std::fprintf(stderr, "tapegrad::dist: rank %d of %d: %s\n", r, n, message.c_str());
  std::fflush(nullptr);
  if (init && !fin) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

template <class T>
void allreduce(xt::xarray<T>& a, ReduceOp op, Group group) {
  require_mpi("allreduce");
  verify("allreduce", group, a.size(), &a.shape(), false, 0);
  allreduce_raw("allreduce", a.data(), a.size(), op, group);
}

template <class T>
void allreduce(T* data, std::size_t n, ReduceOp op, Group group, Verify v) {
  require_mpi("allreduce");
  if (v == Verify::counts) verify("allreduce", group, n, nullptr, false, 0);
  allreduce_raw("allreduce", data, n, op, group);
}

template <class T>
T allreduce_value(T value, ReduceOp op, Group group) {
  require_mpi("allreduce_value");
  allreduce_raw("allreduce_value", &value, 1, op, group);
  return value;
}

template <class T>
void broadcast(xt::xarray<T>& a, int root, Group group) {
  require_mpi("broadcast");
  verify("broadcast", group, a.size(), &a.shape(), true, root);
  broadcast_raw("broadcast", a.data(), a.size(), root, group);
}

template <class T>
void broadcast(T* data, std::size_t n, int root, Group group, Verify v) {
  require_mpi("broadcast");
  if (v == Verify::counts) {
    verify("broadcast", group, n, nullptr, true, root);
  } else {
    detail::check_root("broadcast", root, group, group.size());
  }
  broadcast_raw("broadcast", data, n, root, group);
}

TAPEGRAD_DIST_INSTANTIATE(float)
TAPEGRAD_DIST_INSTANTIATE(double)
#undef TAPEGRAD_DIST_INSTANTIATE

}  // namespace tapegrad::dist
#endif  // TAPEGRAD_HAVE_MPI
