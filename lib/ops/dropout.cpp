#include "tapegrad/ops/dropout.hpp"

namespace tapegrad {

namespace {
enum class DropoutSaved : std::size_t { mask, count };  // 0 or 1/(1-p) per element
}  // namespace

template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen) {
  if (!(p >= 0 && p <= 1)) {
    throw ValueError("dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
  }
  Tape<T>& t = Tape<T>::of("dropout", {x});
  auto r = t.record("dropout", {x});
  const xt::xarray<T>& xv = t.value(x);
  T* y = r.out(xv.shape()).data();
  const T* xp = xv.data();
  const std::size_t n = xv.size();
  xt::xarray<T>& mask = r.save(DropoutSaved::mask);
  if (mask.shape() != xv.shape()) mask.resize(xv.shape());
  T* m = mask.data();
  const T scale = (training && p < 1) ? static_cast<T>(1.0 / (1.0 - p)) : T(1);
  for (std::size_t i = 0; i < n; ++i) {
    m[i] = !training ? T(1) : (p >= 1 || gen.uniform() < p) ? T(0) : scale;
    y[i] = xp[i] * m[i];
  }
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const T* g = c.grad().data();
    const T* keep = c.saved(DropoutSaved::mask).data();
    T* gx = c.input_grad(0).data();
    for (std::size_t i = 0, count = c.grad().size(); i < count; ++i) gx[i] += g[i] * keep[i];
  });
}

template Var<float> dropout(const Var<float>&, double, bool, Generator&);
template Var<double> dropout(const Var<double>&, double, bool, Generator&);

}  // namespace tapegrad
