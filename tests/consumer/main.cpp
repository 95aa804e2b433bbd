// An outside program using the installed tapegrad package.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

int main() {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>({1.0f, 2.0f, 3.0f}), true);
  auto y = tg::exp(x) * x;  // dy/dx = e^x (1 + x)
  t.backward(y, xt::xarray<float>({1.0f, 1.0f, 1.0f}));
  const float g = t.grad(x)(0);
  std::printf("consumer: d/dx x e^x at 1 = %.5f\n", static_cast<double>(g));
  // tapegrad::dist links (with MPI through the package's find_dependency when built with it):
  // built_with_mpi() lives in the object file that calls MPI. (No Context here: OpenMPI's
  // allocations at exit would be reported by the sanitizer build's leak checker.)
  std::printf("consumer: tapegrad::dist %s MPI\n", tg::dist::built_with_mpi() ? "on" : "without");
  return (g > 5.43f && g < 5.44f) ? 0 : 1;
}
