// Seeing the graph: tape.name(v, "loss"), describe() and to_dot() with values, gradients and the
// input-order layout (DescribeOptions).
#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

TEST_CASE("describe shows names, values and gradients of a small graph") {
  tg::Tape<double> t;
  tg::Parameter<double> w(xt::xarray<double>{{0.5, -1.0}});
  auto x = t.name(t.input(xt::xarray<double>{{1.0, 2.0}}, true), "x");
  auto h = x * t.param(w);
  auto loss = t.name(tg::sum(h), "loss");
  CHECK(t.name(x) == "x");
  CHECK(t.name(h).empty());
  CHECK(t.info(3).name == "loss");
  t.backward(loss);
  CHECK(
      t.describe(tg::DescribeOptions{true, true}) ==
      "index  name  op                 shape            parents        requires_grad  value      grad\n"
      "    0  x     input              (1, 2)           -              yes            [1, 2]     [0.5, -1]\n"
      "    1        param (parameter)  (1, 2)           -              yes            [0.5, -1]  [1, 2]\n"
      "    2        mul                (1, 2)           0,1            yes            [0.5, -2]  [1, 1]\n"
      "    3  loss  sum                ()               2              yes            [-1.5]     [1]\n");
  // Values only; names only (the default columns otherwise).
  CHECK(t.describe(tg::DescribeOptions{true, false}) ==
        "index  name  op                 shape            parents        requires_grad  value\n"
        "    0  x     input              (1, 2)           -              yes            [1, 2]\n"
        "    1        param (parameter)  (1, 2)           -              yes            [0.5, -1]\n"
        "    2        mul                (1, 2)           0,1            yes            [0.5, -2]\n"
        "    3  loss  sum                ()               2              yes            [-1.5]\n");
  CHECK(t.describe() ==
        "index  name  op                 shape            parents        requires_grad\n"
        "    0  x     input              (1, 2)           -              yes\n"
        "    1        param (parameter)  (1, 2)           -              yes\n"
        "    2        mul                (1, 2)           0,1            yes\n"
        "    3  loss  sum                ()               2              yes\n");
  // An empty name removes it; with no names the table is the one without a name column.
  t.name(x, "");
  t.name(loss, "");
  CHECK(t.describe() ==
        "index  op                 shape            parents        requires_grad\n"
        "    0  input              (1, 2)           -              yes\n"
        "    1  param (parameter)  (1, 2)           -              yes\n"
        "    2  mul                (1, 2)           0,1            yes\n"
        "    3  sum                ()               2              yes\n");
}

TEST_CASE("describe truncates long values, marks missing gradients and the upstream of backward(out, g)") {
  tg::Tape<float> t;
  auto a = t.input(xt::arange<float>(10.0f), true);
  auto c = t.constant(xt::xarray<float>{1.0f});
  auto b = a * c;
  SECTION("before backward") {
    tg::DescribeOptions o;
    o.show_values = true;
    o.show_grads = true;
    o.max_elements = 3;
    const std::string s = t.describe(o);
    CHECK_THAT(s, Catch::Contains("[0, 1, 2, ...]  -\n"));                 // a: no backward yet
    CHECK_THAT(s, Catch::Contains("no             [1]             -\n"));  // c: no grad at all
  }
  SECTION("after backward(out, upstream)") {
    t.backward(b, xt::ones<float>({10}));
    tg::DescribeOptions o{false, true, 4};
    const std::string s = t.describe(o);
    CHECK_THAT(s, Catch::Contains("yes            [1, 1, 1, 1, ...]\n"));  // a
    CHECK_THAT(s, Catch::Contains("yes            (upstream)\n"));         // b: the tape kept no copy
  }
  tg::DescribeOptions none{true, false, 0};
  CHECK_THAT(t.describe(none), Catch::Contains("[...]"));
}

TEST_CASE("to_dot shows names, values and gradients, and lays the inputs out in creation order") {
  tg::Tape<double> t;
  auto x = t.name(t.input(xt::xarray<double>{2.0}, true), "x");
  auto y = t.name(t.input(xt::xarray<double>{3.0}, true), "y \"the\" second");
  auto xy = x * y;
  auto z = t.name(xy + tg::exp(x), "z");
  t.backward(z);
  const std::string plain = t.to_dot();
  CHECK_THAT(plain, Catch::StartsWith("digraph tape {\n  rankdir=LR;\n"));
  CHECK_THAT(plain, Catch::Contains("  n0 [label=\"0: input 'x'\\n(1)\", style=filled"));
  CHECK_THAT(plain, Catch::Contains("  n1 [label=\"1: input 'y \\\"the\\\" second'\\n(1)\""));
  CHECK_THAT(plain, Catch::Contains("  n2 [label=\"2: mul\\n(1)\"];\n  n0 -> n2;\n  n1 -> n2;\n"));
  CHECK(plain.find("rank=same") == std::string::npos);
  CHECK(plain.find("value") == std::string::npos);

  tg::DescribeOptions o{true, true};
  o.inputs_in_order = true;
  o.left_to_right = false;
  const std::string dot = t.to_dot(o);
  CHECK_THAT(dot, Catch::StartsWith("digraph tape {\n  rankdir=TB;\n"));
  CHECK_THAT(dot, Catch::Contains("  n0 [label=\"0: input 'x'\\n(1)\\nvalue [2]\\ngrad [10.39]\""));
  CHECK_THAT(dot, Catch::Contains("  n4 [label=\"4: add 'z'\\n(1)\\nvalue [13.39]\\ngrad [1]\"];\n"));
  CHECK_THAT(dot, Catch::EndsWith("  { rank=same; n0; n1; }\n  n0 -> n1 [style=invis];\n}\n"));
  // One leaf: nothing to order (an invisible chain of one would hide it).
  tg::Tape<double> one;
  tg::exp(one.input(xt::xarray<double>{1.0}, true));
  CHECK(one.to_dot(o).find("rank=same") == std::string::npos);
}

TEST_CASE("names are forgotten by reset and by truncate with their nodes") {
  tg::Tape<double> t;
  auto x = t.name(t.input(xt::xarray<double>{1.0}), "x");
  auto y = t.name(tg::exp(x), "y");
  t.truncate(1);
  auto y2 = tg::exp(x);  // recorded into y's slot
  CHECK(t.name(y2).empty());
  CHECK(t.name(x) == "x");
  (void)y;
  t.reset();
  auto x2 = t.input(xt::xarray<double>{1.0});
  CHECK(t.name(x2).empty());
  CHECK(t.describe().find("name") == std::string::npos);
}

TEST_CASE("tape.name with a Var of another tape, a stale or an empty Var is a StateError; nothing is named") {
  tg::Tape<double> t, other;
  auto x = t.input(xt::xarray<double>{1.0});
  auto f = other.input(xt::xarray<double>{1.0});
  tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::StateError>([&] { t.name(f, "f"); }, {"name", "different tape"});
  expect_error<tg::StateError>([&] { t.name(tg::Var<double>(), "e"); }, {"name", "empty"});
  expect_error<tg::StateError>([&] { (void)t.name(f); }, {"different tape"});
  other.reset();
  expect_error<tg::StateError>([&] { other.name(f, "f"); }, {"name", "before tape.reset()"});
  snap.check_unchanged();
  CHECK(t.name(x).empty());
}
