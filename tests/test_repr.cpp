// Modules print their numbers and shapes as PyTorch does (python_float, python_shape).
#include <limits>

#include "support.hpp"

namespace tg = tapegrad;

TEST_CASE("python_float writes a double as Python's repr does") {
  CHECK(tg::python_float(1e-5) == "1e-05");
  CHECK(tg::python_float(1e-3) == "0.001");
  CHECK(tg::python_float(1e-4) == "0.0001");
  CHECK(tg::python_float(0.1) == "0.1");
  CHECK(tg::python_float(0.01) == "0.01");
  CHECK(tg::python_float(0.5) == "0.5");
  CHECK(tg::python_float(1.0) == "1.0");
  CHECK(tg::python_float(20.0) == "20.0");
  CHECK(tg::python_float(100.0) == "100.0");
  CHECK(tg::python_float(123.456) == "123.456");
  CHECK(tg::python_float(-2.5e-7) == "-2.5e-07");
  CHECK(tg::python_float(1e15) == "1000000000000000.0");
  CHECK(tg::python_float(1e16) == "1e+16");
  CHECK(tg::python_float(1.5e300) == "1.5e+300");
  CHECK(tg::python_float(0.0) == "0.0");
  CHECK(tg::python_float(-0.0) == "-0.0");
  CHECK(tg::python_float(static_cast<double>(0.1f)) == "0.10000000149011612");
  CHECK(tg::python_float(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(tg::python_float(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(tg::python_shape({6}) == "(6,)");
  CHECK(tg::python_shape({2, 3}) == "(2, 3)");
  CHECK(tg::python_shape({}) == "()");
}

TEST_CASE("norms and activations print their options as torch.nn's modules do") {
  CHECK(tg::LayerNorm<float>(tg::Shape{6}).to_string() ==
        "LayerNorm((6,), eps=1e-05, elementwise_affine=True)\n");
  CHECK(tg::BatchNorm1d<float>(4).to_string() ==
        "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n");
  CHECK(tg::GroupNorm<float>(3, 6).to_string() == "GroupNorm(3, 6, eps=1e-05, affine=True)\n");
  CHECK(tg::InstanceNorm1d<float>(6).to_string() ==
        "InstanceNorm1d(6, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)\n");
  CHECK(tg::LeakyReLU<float>().to_string() == "LeakyReLU(negative_slope=0.01)\n");
  CHECK(tg::ELU<float>().to_string() == "ELU(alpha=1.0)\n");
  CHECK(tg::Dropout<float>(0.25).to_string() == "Dropout(p=0.25)\n");
}
