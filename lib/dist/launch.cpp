// tapegrad::dist::launch_environment and launcher_variable: the launcher's environment variables,
// in every build.
#include <cstdlib>

#include "tapegrad/dist.hpp"

namespace tapegrad::dist {

namespace {
// The variable's value as a positive int, or 0 (unset, empty, not a number).
int positive_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0 && n < (1L << 30)) ? static_cast<int>(n) : 0;
}
}  // namespace

Launch launch_environment() noexcept {
  Launch l;
  l.world_size = positive_env("OMPI_COMM_WORLD_SIZE");
  l.local_size = positive_env("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (l.world_size == 0) {
    l.world_size = positive_env("PMI_SIZE");
    l.local_size = positive_env("MPI_LOCALNRANKS");
  }
  if (l.local_size == 0 || l.local_size > l.world_size) l.local_size = l.world_size;
  return l;
}

bool launcher_variable(std::string_view name) noexcept {
  for (const std::string_view prefix : {"OMPI_", "PMIX_", "PMI_", "OPAL_", "ORTE_", "HYDRA_", "MPI_LOCAL"}) {
    if (name.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace tapegrad::dist
