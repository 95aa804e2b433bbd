#pragma once
// What comm_mpi.cpp (tapegrad::dist on MPI) and comm_local.cpp (the world of one process) share:
// the root check of a broadcast and the list of instantiated collectives.
#include <string>

#include "tapegrad/dist.hpp"

namespace tapegrad::dist::detail {

inline const char* group_name(const Group& g) { return g.is_world() ? "world" : "self"; }

// ValueError unless 0 <= root < size; `note` ends the message (why the group is that small).
inline void check_root(const char* op, int root, const Group& g, int size, const char* note = "") {
  if (root >= 0 && root < size) return;
  throw ValueError(std::string("dist::") + op + ": root " + std::to_string(root) + " is outside the " +
                   group_name(g) + " group of " + std::to_string(size) + (size == 1 ? " rank" : " ranks") +
                   note);
}

}  // namespace tapegrad::dist::detail

// Both builds instantiate the same collectives for float and double.
#define TAPEGRAD_DIST_INSTANTIATE(T)                                 \
  template void allreduce(xt::xarray<T>&, ReduceOp, Group);          \
  template void allreduce(T*, std::size_t, ReduceOp, Group, Verify); \
  template T allreduce_value(T, ReduceOp, Group);                    \
  template void broadcast(xt::xarray<T>&, int, Group);               \
  template void broadcast(T*, std::size_t, int, Group, Verify);
