#pragma once
// Numbers and shapes in module descriptions (Module::extra_repr) written as PyTorch prints
// them, so a printed model reads like its PyTorch twin:
//   python_float(1e-5) == "1e-05", python_float(0.1) == "0.1", python_float(1) == "1.0"
//   python_shape({6}) == "(6,)",   python_shape({2, 3}) == "(2, 3)"
// python_float is Python's repr(float): the shortest digits that read back to the same double,
// in positional form for exponents -4..15 (with ".0" if there is no fraction) and in scientific
// form otherwise; "nan", "inf", "-inf" for non-finite values.
#include <charconv>
#include <cmath>
#include <string>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

inline std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // shortest round-trip digits: "-1.25e-05"
  const std::size_t e_pos = sci.find('e');
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  if (exponent < -4 || exponent >= 16) return sci;
  const std::string sign = sci[0] == '-' ? "-" : "";
  std::string digits;
  for (std::size_t i = sign.size(); i < e_pos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  if (exponent < 0) return sign + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
  const auto whole = static_cast<std::size_t>(exponent) + 1;
  if (digits.size() < whole) digits.append(whole - digits.size(), '0');
  const std::string fraction = digits.size() > whole ? digits.substr(whole) : "0";
  return sign + digits.substr(0, whole) + "." + fraction;
}

inline std::string python_shape(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace tapegrad
