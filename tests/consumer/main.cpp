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
  // A product through the BLAS the package links (OpenBLAS, found by the consumer's own
  // find_dependency or pkg-config): (2, 3) x (3, 2) of ones is 3 everywhere.
  auto a = t.input(xt::xarray<float>(xt::ones<float>({2, 3})));
  auto b = t.input(xt::xarray<float>(xt::ones<float>({3, 2})));
  const float p = t.value(tg::matmul(a, b))(1, 1);
  std::printf("consumer: matmul %.1f, BLAS %s\n", static_cast<double>(p), tg::blas_info().library.c_str());
  // tapegrad::dist links (with MPI through the package's find_dependency when built with it):
  // built_with_mpi() lives in the object file that calls MPI. (No Context here: OpenMPI's
  // allocations at exit would be reported by the sanitizer build's leak checker.)
  std::printf("consumer: tapegrad::dist %s MPI\n", tg::dist::built_with_mpi() ? "on" : "without");
  return (g > 5.43f && g < 5.44f && p == 3.0f) ? 0 : 1;
}
