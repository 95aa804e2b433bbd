#include "tapegrad/ops/rms_norm.hpp"

#include <limits>
#include <string>
#include <vector>

#include "../core/check_eps.hpp"
#include "group_norm_kernels.hpp"
#include "norm_family_common.hpp"

namespace tapegrad {

namespace {

enum class RmsSaved : std::size_t { rstd, count };
// rms_norm's ints: the normalized size; then the (group, e) pairs of wide groups.
enum class RmsInt : std::size_t { dim, count };

}  // namespace

template <class T>
double rms_norm_default_eps() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

// The math is written above the kernels in rms_norm_kernels.cpp.
template <class T>
Var<T> rms_norm(const Var<T>& x, const Var<T>& weight, std::size_t normalized_ndim,
                std::optional<double> eps) {
  const char* op = "rms_norm";
  Tape<T>& t = Tape<T>::of(op, {x});
  const Shape& xs = t.shape(x);
  if (normalized_ndim == 0 || normalized_ndim > xs.size()) {
    throw ValueError(std::string(op) + ": normalized_ndim must be in 1.." + std::to_string(xs.size()) +
                     " for an input of shape " + shape_str(xs) + ", got " + std::to_string(normalized_ndim));
  }
  const double e = eps ? *eps : rms_norm_default_eps<T>();
  detail::check_eps(op, e);
  const Shape norm_shape(xs.end() - static_cast<std::ptrdiff_t>(normalized_ndim), xs.end());
  const std::size_t dim = numel(norm_shape);
  if (dim == 0) {
    throw ShapeError(std::string(op) + ": the normalized shape " + shape_str(norm_shape) + " of input " +
                     shape_str(xs) + " is empty");
  }
  const bool affine =
      detail::check_norm_affine(op, t, weight, static_cast<const Var<T>*>(nullptr), norm_shape, [&] {
        return "the normalized shape of input " + shape_str(xs) + " (its trailing " +
               std::to_string(normalized_ndim) + " dims) is";
      });
  const std::size_t groups = t.value(x).size() / dim;

  auto r = affine ? t.record(op, {x, weight}) : t.record(op, {x});
  T* rstd = nullptr;
  std::vector<std::ptrdiff_t>* wide = nullptr;
  if (r.requires_grad()) {
    rstd = detail::sized_1d(r.save(RmsSaved::rstd), groups);
    r.set_int(RmsInt::dim, static_cast<std::ptrdiff_t>(dim));
    wide = &r.template int_list<RmsInt>();
  }
  detail::rms_norm_forward(r.out(xs).data(), rstd, wide, t.value(x).data(),
                           affine ? t.value(weight).data() : nullptr, groups, dim, e);
  return r.finish([](BackwardCtx<T>& c) {
    const auto D = static_cast<std::size_t>(c.int_at(RmsInt::dim));
    const IntSpan wide_pairs = c.template int_list<RmsInt>();
    const std::size_t G = c.saved(RmsSaved::rstd).size();
    const bool with_affine = c.num_inputs() == 2;
    thread_local std::vector<double> dw;
    dw.assign(with_affine && c.needs_grad(1) ? D : 0, 0.0);
    const GradWrite<T> dx = c.needs_grad(0) ? c.input_grad_write(0) : GradWrite<T>{nullptr, T(0)};
    detail::rms_norm_backward(dx.data, dx.beta, dw.empty() ? nullptr : dw.data(), c.grad().data(),
                              c.input(0).data(), with_affine ? c.input(1).data() : nullptr,
                              c.saved(RmsSaved::rstd).data(), wide_pairs.begin(), wide_pairs.end(), G, D);
    if (!dw.empty()) detail::add_double_into(c.input_grad(1), dw);
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                                               \
  template Var<T> rms_norm(const Var<T>&, const Var<T>&, std::size_t, std::optional<double>); \
  template double rms_norm_default_eps<T>();
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
