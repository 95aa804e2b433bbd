#pragma once
// Printing: `std::cout << var`, `<< parameter` and `<< array` (an xt::xarray<float|double>)
// in PyTorch 1.13's format, with this header (or <tapegrad/tapegrad.hpp>) alone:
//
//   tensor([[1.0000, 2.5000, 3.0000],
//           [4.0000, 5.0000, 6.0000]], shape=(2, 3), dtype=float32, grad_fn=<matmul>)
//
// The values are laid out as torch's repr lays them out (precision 4; integer mode "1.", fixed
// "0.1000" or scientific "1.0000e-05" chosen from the magnitudes; 80 columns; more than 1000
// elements are summarized with "..." and 3 edge items per dimension). Deliberate differences
// from PyTorch: shape and dtype are always shown (torch omits the default ones), grad_fn names
// the tapegrad op that recorded the Var (torch: <MmBackward0>), a Parameter prints as torch's
// "Parameter containing:" plus the tensor, and a plain array prints as "xarray(...)" (it is not
// a Var: it has no requires_grad). A Var recorded before tape.reset() (or dropped by
// truncate()) prints "<stale Var ...>" and an empty Var "<empty Var>": printing never throws
// tapegrad errors. Other element types of xt::xarray print with <xtensor/xio.hpp>.
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// The values part of torch's repr, "[[1., 2.],\n        [3., 4.]]", for an array printed
// after a prefix of `indent` characters ("tensor(" is 7).
template <class T>
std::string format_values(const xt::xarray<T>& a, std::size_t indent = 7);
// "tensor(<values>, shape=(2, 3), dtype=float32<, extra suffixes>)" with torch's line breaks
// before a suffix that would pass 80 columns. `prefix` is "tensor(" or "xarray(".
template <class T>
std::string format_tensor(const xt::xarray<T>& a, const std::string& prefix = "tensor(",
                          const std::vector<std::string>& extra_suffixes = {});
// What operator<< prints for a Var and for a Parameter.
template <class T>
std::string to_string(const Var<T>& v);
template <class T>
std::string to_string(const Parameter<T>& p);

template <class T>
std::ostream& operator<<(std::ostream& os, const Var<T>& v) {
  return os << to_string(v);
}
template <class T>
std::ostream& operator<<(std::ostream& os, const Parameter<T>& p) {
  return os << to_string(p);
}

extern template std::string format_values<float>(const xt::xarray<float>&, std::size_t);
extern template std::string format_values<double>(const xt::xarray<double>&, std::size_t);
extern template std::string format_tensor<float>(const xt::xarray<float>&, const std::string&,
                                                 const std::vector<std::string>&);
extern template std::string format_tensor<double>(const xt::xarray<double>&, const std::string&,
                                                  const std::vector<std::string>&);
extern template std::string to_string<float>(const Var<float>&);
extern template std::string to_string<double>(const Var<double>&);
extern template std::string to_string<float>(const Parameter<float>&);
extern template std::string to_string<double>(const Parameter<double>&);

}  // namespace tapegrad

namespace xt {
// In xtensor's namespace so that argument-dependent lookup finds it for `std::cout << array`
// without a using-declaration. It takes xarray<float|double> exactly, so with <xtensor/xio.hpp>
// also included it is the better match for these arrays and xio prints everything else.
template <class T, std::enable_if_t<std::is_same<T, float>::value || std::is_same<T, double>::value, int> = 0>
std::ostream& operator<<(std::ostream& os, const xarray<T>& a) {
  return os << tapegrad::format_tensor(a, "xarray(");
}
}  // namespace xt
