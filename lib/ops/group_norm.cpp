#include "tapegrad/ops/group_norm.hpp"

#include <string>
#include <vector>

#include "../core/check_eps.hpp"
#include "group_norm_kernels.hpp"
#include "norm_family_common.hpp"

namespace tapegrad {

namespace {

// Saved by group_norm: each group's statistics split as norm_kernels.hpp describes.
enum class GnSaved : std::size_t { mean_hi, mean_lo, rstd, count };
// group_norm's ints: the (N, C, L) view of x and G; then the (group, e) pairs of wide groups.
enum class GnInt : std::size_t { n, ch, len, groups, count };

// The checks of group_norm, in the order PyTorch makes them; returns the (N, C, L, G) view.
template <class T>
detail::GroupDims check_group_input(const char* op, Tape<T>& t, const Var<T>& x, std::size_t groups,
                                    double eps) {
  const Shape& xs = t.shape(x);
  if (xs.size() != 2 && xs.size() != 3) {
    throw ShapeError(std::string(op) + ": expected a 2-D (N, C) or 3-D (N, C, L) input, got " +
                     std::to_string(xs.size()) + "-D input of shape " + shape_str(xs));
  }
  const detail::GroupDims d{xs[0], xs[1], xs.size() == 3 ? xs[2] : 1, groups};
  if (d.n == 0 || d.ch == 0 || d.len == 0) {
    throw ShapeError(std::string(op) + ": expected a non-empty input, got shape " + shape_str(xs));
  }
  if (groups == 0 || d.ch % groups != 0) {
    throw ValueError(std::string(op) + ": expected the number of channels in the input to be divisible by " +
                     "num_groups, but got input of shape " + shape_str(xs) +
                     " and num_groups=" + std::to_string(groups));
  }
  if (d.n * (d.ch / groups) * d.len == 1) {  // PyTorch's _verify_batch_size in F.group_norm
    throw ValueError(std::string(op) +
                     ": Expected more than 1 value per channel when training, got input size " +
                     shape_str(xs) + " with num_groups=" + std::to_string(groups));
  }
  detail::check_eps(op, eps);
  return d;
}

}  // namespace

// The math is written above the kernels in group_norm_kernels.cpp.
template <class T>
Var<T> group_norm(const Var<T>& x, std::size_t num_groups, const Var<T>& weight, const Var<T>& bias,
                  double eps, GroupStatistics* stats) {
  const char* op = "group_norm";
  Tape<T>& t = Tape<T>::of(op, {x});
  const detail::GroupDims d = check_group_input(op, t, x, num_groups, eps);
  const Shape& xs = t.shape(x);
  const bool affine = detail::check_norm_affine(op, t, weight, &bias, Shape{d.ch}, [&] {
    return "the input " + shape_str(xs) + " has " + std::to_string(d.ch) + " channels, so it must be";
  });
  const std::size_t total = d.n * d.groups;

  auto r = affine ? t.record(op, {x, weight, bias}) : t.record(op, {x});
  T *mean_hi = nullptr, *mean_lo = nullptr, *rstd = nullptr;
  std::vector<std::ptrdiff_t>* wide = nullptr;
  if (r.requires_grad()) {
    mean_hi = detail::sized_1d(r.save(GnSaved::mean_hi), total);
    mean_lo = detail::sized_1d(r.save(GnSaved::mean_lo), total);
    rstd = detail::sized_1d(r.save(GnSaved::rstd), total);
    r.set_int(GnInt::n, static_cast<std::ptrdiff_t>(d.n));
    r.set_int(GnInt::ch, static_cast<std::ptrdiff_t>(d.ch));
    r.set_int(GnInt::len, static_cast<std::ptrdiff_t>(d.len));
    r.set_int(GnInt::groups, static_cast<std::ptrdiff_t>(d.groups));
    wide = &r.template int_list<GnInt>();
  }
  thread_local std::vector<double> sm, sv;
  sm.resize(stats ? total : 0);
  sv.resize(stats ? total : 0);
  detail::group_norm_forward(r.out(xs).data(), mean_hi, mean_lo, rstd, wide, stats ? sm.data() : nullptr,
                             stats ? sv.data() : nullptr, t.value(x).data(),
                             affine ? t.value(weight).data() : nullptr,
                             affine ? t.value(bias).data() : nullptr, d, eps);
  if (stats) {
    stats->mean.assign(sm.begin(), sm.end());
    stats->var.assign(sv.begin(), sv.end());
  }
  return r.finish([](BackwardCtx<T>& c) {
    const detail::GroupDims g{
        static_cast<std::size_t>(c.int_at(GnInt::n)), static_cast<std::size_t>(c.int_at(GnInt::ch)),
        static_cast<std::size_t>(c.int_at(GnInt::len)), static_cast<std::size_t>(c.int_at(GnInt::groups))};
    const IntSpan wide_pairs = c.template int_list<GnInt>();
    const bool with_affine = c.num_inputs() == 3;
    thread_local std::vector<double> dw, db;
    const bool params = with_affine && (c.needs_grad(1) || c.needs_grad(2));
    dw.assign(params ? g.ch : 0, 0.0);
    db.assign(params ? g.ch : 0, 0.0);
    const GradWrite<T> dx = c.needs_grad(0) ? c.input_grad_write(0) : GradWrite<T>{nullptr, T(0)};
    detail::group_norm_backward(dx.data, dx.beta, dw.empty() ? nullptr : dw.data(),
                                db.empty() ? nullptr : db.data(), c.grad().data(), c.input(0).data(),
                                with_affine ? c.input(1).data() : nullptr, c.saved(GnSaved::mean_hi).data(),
                                c.saved(GnSaved::mean_lo).data(), c.saved(GnSaved::rstd).data(),
                                wide_pairs.begin(), wide_pairs.end(), g);
    if (params && c.needs_grad(1)) detail::add_double_into(c.input_grad(1), dw);
    if (params && c.needs_grad(2)) detail::add_double_into(c.input_grad(2), db);
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                                                \
  template Var<T> group_norm(const Var<T>&, std::size_t, const Var<T>&, const Var<T>&, double, \
                             GroupStatistics*);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
