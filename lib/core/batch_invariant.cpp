#include "tapegrad/core/batch_invariant.hpp"

namespace tapegrad {

namespace {
thread_local bool g_batch_invariant = false;
}  // namespace

bool batch_invariant() noexcept { return g_batch_invariant; }
void set_batch_invariant(bool on) noexcept { g_batch_invariant = on; }

}  // namespace tapegrad
