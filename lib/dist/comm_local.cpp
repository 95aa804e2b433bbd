// tapegrad::dist without MPI (TAPEGRAD_MPI off): a world of one process. Every collective is a
// local no-op that validates its arguments as the MPI build does (comm_mpi.cpp).
#ifndef TAPEGRAD_HAVE_MPI
#include <cstdio>
#include <cstdlib>
#include <string>

#include "comm_common.hpp"
#include "tapegrad/dist.hpp"

namespace tapegrad::dist {

namespace {
void check_root(int root, const Group& g) {
  detail::check_root("broadcast", root, g, 1, " (tapegrad was built without MPI)");
}
}  // namespace

bool built_with_mpi() noexcept { return false; }
bool initialized() noexcept { return true; }

Context::Context() { init(nullptr, nullptr); }
Context::Context(int& argc, char**& argv) { init(&argc, &argv); }
void Context::init(int*, char***) {}
Context::~Context() = default;
int Context::rank() const { return 0; }
int Context::world_size() const { return 1; }

int Group::rank() const { return 0; }
int Group::size() const { return 1; }

void barrier(Group, Wait) {}

void abort(const std::string& message, int exit_code) noexcept {
  std::fprintf(stderr, "tapegrad::dist: rank 0 of 1: %s\n", message.c_str());
  std::fflush(nullptr);
  std::_Exit(exit_code);
}

// A sum, mean, max or min over one rank is the value itself.
template <class T>
void allreduce(xt::xarray<T>&, ReduceOp, Group) {}
template <class T>
void allreduce(T*, std::size_t, ReduceOp, Group, Verify) {}
template <class T>
T allreduce_value(T value, ReduceOp, Group) {
  return value;
}
template <class T>
void broadcast(xt::xarray<T>&, int root, Group group) {
  check_root(root, group);
}
template <class T>
void broadcast(T*, std::size_t, int root, Group group, Verify) {
  check_root(root, group);
}

TAPEGRAD_DIST_INSTANTIATE(float)
TAPEGRAD_DIST_INSTANTIATE(double)
#undef TAPEGRAD_DIST_INSTANTIATE

}  // namespace tapegrad::dist
#endif  // TAPEGRAD_HAVE_MPI
