#include "support.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

// Runs a fixture case's op on the given inputs; the outputs as a list (split has several).
std::vector<tg::Var<double>> run_op(const std::string& op, const nlohmann::json& a, const Vars& xs) {
  const auto axis = [&](const char* key) { return a.at(key).get<std::ptrdiff_t>(); };
  if (op == "reshape") return {tg::reshape(xs[0], a.at("shape").get<std::vector<std::ptrdiff_t>>())};
  if (op == "flatten") return {tg::flatten(xs[0], axis("start"), axis("end"))};
  if (op == "squeeze") return {tg::squeeze(xs[0], axis("axis"))};
  if (op == "squeeze_all") return {tg::squeeze(xs[0])};
  if (op == "unsqueeze") return {tg::unsqueeze(xs[0], axis("axis"))};
  if (op == "transpose") return {tg::transpose(xs[0], axis("d0"), axis("d1"))};
  if (op == "permute") return {tg::permute(xs[0], a.at("dims").get<std::vector<std::ptrdiff_t>>())};
  if (op == "slice") return {tg::slice(xs[0], axis("axis"), axis("start"), axis("stop"), axis("step"))};
  if (op == "select") return {tg::select(xs[0], axis("axis"), axis("index"))};
  if (op == "index_select") {
    return {tg::index_select(xs[0], axis("axis"), a.at("indices").get<std::vector<std::int64_t>>())};
  }
  if (op == "concat") return {tg::concat(xs, axis("axis"))};
  if (op == "stack") return {tg::stack(xs, axis("axis"))};
  if (op == "split" && a.contains("sizes")) {
    return tg::split(xs[0], a.at("sizes").get<std::vector<std::size_t>>(), axis("axis"));
  }
  if (op == "split") return tg::split(xs[0], a.at("split_size").get<std::size_t>(), axis("axis"));
  throw std::runtime_error("unknown op in fixture: " + op);
}

}  // namespace

TEST_CASE("shape ops match PyTorch's forward values and gradients") {
  const auto fx = tgtest::load_fixture("shape_ops.json");
  std::size_t checked = 0;
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    INFO("op " << op << " args " << c.at("args").dump());
    tg::Tape<double> t;
    Vars xs;
    for (const auto& x : c.at("inputs")) xs.push_back(t.input(tgtest::to_array(x), true));
    const auto ys = run_op(op, c.at("args"), xs);
    REQUIRE(ys.size() == c.at("outputs").size());
    // L = sum_k <upstream_k, y_k>, recorded with a constant weight per output
    tg::Var<double> loss;
    for (std::size_t k = 0; k < ys.size(); ++k) {
      const auto expected = tgtest::to_array(c.at("outputs")[k]);
      REQUIRE(ys[k].shape() == expected.shape());
      CHECK(ys[k].value() == expected);  // a shape op copies: exact
      auto term = tg::sum(ys[k] * t.constant(tgtest::to_array(c.at("upstreams")[k])));
      loss = k == 0 ? term : loss + term;
    }
    t.backward(loss);
    for (std::size_t k = 0; k < xs.size(); ++k) {
      CHECK(tgtest::max_abs_diff(t.grad(xs[k]), tgtest::to_array(c.at("grads")[k])) < 1e-12);
    }
    ++checked;
  }
  CHECK(checked > 60);
}

TEST_CASE("reshape, flatten, squeeze and unsqueeze pass gradcheck") {
  const Arrays x = {randn({2, 3, 4}, 1)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::reshape(v[0], {4, -1}); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::reshape(v[0], {24}); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::flatten(v[0], 1); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::flatten(v[0], 0, 1); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::unsqueeze(v[0], -1); }, x);
  const Arrays ones = {randn({1, 3, 1}, 2)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::squeeze(v[0], 0); }, ones);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::squeeze(v[0]); }, ones);
  const Arrays scalar = {randn({}, 3)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::reshape(v[0], {1, 1}); }, scalar);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::flatten(v[0]); }, scalar);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::unsqueeze(v[0], 0); }, scalar);
}

TEST_CASE("transpose and permute pass gradcheck") {
  for (const tg::Shape& s : {tg::Shape{3, 4}, tg::Shape{2, 1, 3}, tg::Shape{1, 5}}) {
    INFO("shape " << tg::shape_str(s));
    const Arrays x = {randn(s, 4)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::transpose(v[0], 0, -1); }, x);
  }
  const Arrays x = {randn({2, 3, 4}, 5)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::permute(v[0], {2, 0, 1}); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::permute(v[0], {1, -1, 0}); }, x);
  // a weighted result, so a permutation bug cannot hide behind symmetric values
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        return tg::permute(v[0], {2, 1, 0}) * tg::permute(v[0] * v[0], {2, 1, 0});
      },
      x);
}

TEST_CASE("slice, select and index_select pass gradcheck") {
  const Arrays x = {randn({4, 6}, 6)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::slice(v[0], 1, 1, 5, 2); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::slice(v[0], 0, -3, tg::kSliceEnd); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::select(v[0], 0, -1); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::select(v[0], 1, 2); }, x);
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        return tg::index_select(v[0], 1, {5, 0, 5, 2});
      },
      x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::index_select(v[0], 0, {3, 3, 3}); }, x);
  const Arrays y = {randn({2, 1, 3}, 7)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::slice(v[0], 1, 0, 1); }, y);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::select(v[0], 1, 0); }, y);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::index_select(v[0], -1, {2, 0}); }, y);
}

TEST_CASE("concat, stack and split pass gradcheck") {
  const Arrays a = {randn({2, 3}, 8), randn({2, 1}, 9), randn({2, 2}, 10)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::concat(v, 1); }, a);
  const Arrays b = {randn({2, 3}, 11), randn({4, 3}, 12)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::concat(v, 0); }, b);
  const Arrays c = {randn({2, 3}, 13), randn({2, 3}, 14), randn({2, 3}, 15)};
  for (std::ptrdiff_t axis : {0, 1, 2, -2}) {
    INFO("stack axis " << axis);
    CHECK_GRADCHECK([axis](tg::Tape<double>&, const Vars& v) { return tg::stack(v, axis); }, c);
  }
  const Arrays s = {randn({}, 16), randn({}, 17)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::stack(v, -1); }, s);
  const Arrays x = {randn({5, 3}, 18)};
  for (std::size_t k = 0; k < 3; ++k) {
    INFO("piece " << k);
    CHECK_GRADCHECK([k](tg::Tape<double>&, const Vars& v) { return tg::split(v[0], 2, 0)[k]; }, x);
    CHECK_GRADCHECK(
        [k](tg::Tape<double>&, const Vars& v) {
          return tg::split(v[0], std::vector<std::size_t>{1, 2, 0}, 1)[k];
        },
        x);
  }
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        auto p = tg::split(v[0], std::vector<std::size_t>{2, 3}, 0);
        return tg::concat(std::vector<tg::Var<double>>{p[1] * p[1], p[0]}, 0);
      },
      x);
}

TEST_CASE("repeated indices in index_select accumulate their gradients") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{10.0, 20.0, 30.0}, true);
  auto y = tg::index_select(x, 0, {2, 0, 2, 2});
  CHECK(y.value() == xt::xarray<double>{30.0, 10.0, 30.0, 30.0});
  t.backward(y, xt::xarray<double>{1.0, 2.0, 3.0, 4.0});
  CHECK(t.grad(x) == xt::xarray<double>{2.0, 0.0, 8.0});
}

TEST_CASE("slice clamps out-of-range bounds like Python and can be empty") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{0, 1, 2, 3, 4, 5});
  CHECK(tg::slice(x, 0, -100, 100).value() == x.value());
  CHECK(tg::slice(x, 0, -2, tg::kSliceEnd).value() == xt::xarray<float>{4, 5});
  CHECK(tg::slice(x, 0, 1, -1, 2).value() == xt::xarray<float>{1, 3});
  CHECK(tg::slice(x, 0, 0, 6, 100).value() == xt::xarray<float>{0});
  CHECK(tg::slice(x, -1, 4, 2).shape() == tg::Shape{0});
  CHECK(tg::slice(x, 0, 7, 9).shape() == tg::Shape{0});
}

TEST_CASE("squeeze of an axis whose size is not 1 leaves the shape unchanged, as in PyTorch") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({2, 1, 3}));
  CHECK(tg::squeeze(x, 0).shape() == tg::Shape{2, 1, 3});
  CHECK(tg::squeeze(x, -2).shape() == tg::Shape{2, 3});
  CHECK(tg::flatten(x, 1).shape() == tg::Shape{2, 3});
  CHECK(tg::reshape(x, {3, -1, 1}).shape() == tg::Shape{3, 2, 1});
}

TEST_CASE("float shape ops give the same values as double ones") {
  const auto xd = randn({3, 4, 2}, 19);
  tg::Tape<float> tf;
  tg::Tape<double> td;
  auto f = tf.input(xt::xarray<float>(xt::cast<float>(xd)), true);
  auto d = td.input(xd, true);
  auto yf =
      tg::concat(std::vector<tg::Var<float>>{tg::permute(f, {2, 0, 1}),
                                             tg::transpose(tg::slice(tg::transpose(f, 0, 2), 2, 1, 3), 1, 2)},
                 1);
  auto yd = tg::concat(
      std::vector<tg::Var<double>>{tg::permute(d, {2, 0, 1}),
                                   tg::transpose(tg::slice(tg::transpose(d, 0, 2), 2, 1, 3), 1, 2)},
      1);
  CHECK(tgtest::max_abs_diff(yf.value(), yd.value()) < 1e-6);
  const auto up = randn(yd.shape(), 20);
  tf.backward(yf, xt::xarray<float>(xt::cast<float>(up)));
  td.backward(yd, up);
  CHECK(tgtest::max_abs_diff(tf.grad(f), td.grad(d)) < 1e-6);
}

// ---- bad inputs: typed errors that name the op, shapes and values; the tape unchanged ----

TEST_CASE("reshape to a size that does not fit is a ShapeError naming both shapes") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  auto e = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::reshape(x, {4, -1}), "reshape: cannot reshape (2, 3) (6 elements) into (4, -1)");
  CHECK_THROWS_AS(tg::reshape(x, {4, -1}), tg::ShapeError);
  CHECK_THROWS_AS(tg::reshape(x, {7}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::reshape(x, {-1, -1}),
                    Catch::Contains("only one dim can be -1") && Catch::Contains("(-1, -1)"));
  CHECK_THROWS_AS(tg::reshape(x, {-1, -1}), tg::ValueError);
  CHECK_THROWS_WITH(tg::reshape(x, {-2, -3}), Catch::Contains("invalid size -2"));
  CHECK_THROWS_WITH(tg::reshape(e, {-1, 0}), Catch::Contains("(0, 3)") && Catch::Contains("ambiguous"));
  CHECK(t.size() == before);
}

TEST_CASE("an axis out of range is a ValueError naming the op, the axis and the dims") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::squeeze(x, 2),
                    Catch::Contains("squeeze") && Catch::Contains("axis 2") && Catch::Contains("2 dims"));
  CHECK_THROWS_WITH(tg::unsqueeze(x, -4), Catch::Contains("unsqueeze") && Catch::Contains("axis -4"));
  CHECK_THROWS_AS(tg::unsqueeze(x, 3), tg::ValueError);
  CHECK_THROWS_AS(tg::transpose(x, 0, 2), tg::ValueError);
  CHECK_THROWS_AS(tg::flatten(x, -3), tg::ValueError);
  CHECK_THROWS_WITH(tg::flatten(x, 1, 0), Catch::Contains("flatten") && Catch::Contains("start_axis 1") &&
                                              Catch::Contains("(2, 3)"));
  CHECK_THROWS_WITH(tg::slice(x, 5, 0, 1), Catch::Contains("slice") && Catch::Contains("axis 5"));
  CHECK_THROWS_AS(tg::select(x, -3, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::index_select(x, 2, {0}), tg::ValueError);
  CHECK_THROWS_AS(tg::split(x, 1, 2), tg::ValueError);
  CHECK_THROWS_AS(tg::concat(Vars{x, x}, 2), tg::ValueError);
  CHECK_THROWS_AS(tg::stack(Vars{x, x}, 3), tg::ValueError);
  CHECK(t.size() == before);
}

TEST_CASE("indices out of range and bad steps are ValueErrors naming index and size") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::select(x, 1, 3),
                    Catch::Contains("select") && Catch::Contains("index 3") && Catch::Contains("size 3"));
  CHECK_THROWS_WITH(tg::select(x, 0, -3),
                    Catch::Contains("index -3") && Catch::Contains("size 2") && Catch::Contains("(2, 3)"));
  CHECK_THROWS_AS(tg::select(x, 0, 2), tg::ValueError);
  CHECK_THROWS_WITH(tg::index_select(x, 1, {0, 3}), Catch::Contains("index_select") &&
                                                        Catch::Contains("index 3") &&
                                                        Catch::Contains("size 3"));
  CHECK_THROWS_WITH(tg::index_select(x, 0, {-1}), Catch::Contains("index -1"));
  CHECK_THROWS_AS(tg::index_select(x, 0, {-1}), tg::ValueError);
  CHECK_THROWS_WITH(tg::slice(x, 1, 0, 3, 0),
                    Catch::Contains("slice") && Catch::Contains("step must be >= 1; got 0"));
  CHECK_THROWS_AS(tg::slice(x, 1, 3, 0, -1), tg::ValueError);
  CHECK(t.size() == before);
}

TEST_CASE("permute with dims that are not a permutation is a ValueError") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3, 4}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::permute(x, {0, 0, 1}), Catch::Contains("permute") && Catch::Contains("[0, 0, 1]") &&
                                                   Catch::Contains("not a permutation"));
  CHECK_THROWS_AS(tg::permute(x, {0, 2, -1}), tg::ValueError);
  CHECK_THROWS_WITH(tg::permute(x, {1, 0}), Catch::Contains("2 entries") && Catch::Contains("(2, 3, 4)"));
  CHECK_THROWS_AS(tg::permute(x, {0, 1, 3}), tg::ValueError);
  CHECK(t.size() == before);
}

TEST_CASE("concat and stack reject empty lists, mismatched shapes, 0-d inputs and mixed tapes") {
  tg::Tape<double> t, other;
  auto a = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  auto b = t.input(xt::xarray<double>::from_shape({2, 4}), true);
  auto c = t.input(xt::xarray<double>::from_shape({3}), true);
  auto s = t.input(xt::xarray<double>(1.0), true);
  auto elsewhere = other.input(xt::xarray<double>::from_shape({2, 3}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::concat(Vars{}, 0), Catch::Contains("concat") && Catch::Contains("empty list"));
  CHECK_THROWS_AS(tg::concat(Vars{}, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::stack(Vars{}, 0), tg::ValueError);
  CHECK(tg::concat(Vars{a, b}, 1).shape() == tg::Shape{2, 7});  // only the concat axis differs
  CHECK_THROWS_WITH(tg::concat(Vars{a, b}, 0), Catch::Contains("(2, 3)") && Catch::Contains("(2, 4)") &&
                                                   Catch::Contains("dim 1") &&
                                                   Catch::Contains("concat axis 0"));
  CHECK_THROWS_AS(tg::concat(Vars{a, b}, 0), tg::ShapeError);
  CHECK_THROWS_WITH(tg::concat(Vars{a, c}, 0), Catch::Contains("number of dims") && Catch::Contains("(3)"));
  CHECK_THROWS_WITH(tg::concat(Vars{s, s}, 0), Catch::Contains("0-d"));
  CHECK_THROWS_WITH(tg::stack(Vars{a, a, b}, 0),
                    Catch::Contains("stack") && Catch::Contains("input 2") && Catch::Contains("(2, 4)"));
  CHECK_THROWS_AS(tg::stack(Vars{a, b}, 0), tg::ShapeError);
  CHECK_THROWS_WITH(tg::concat(Vars{a, elsewhere}, 0),
                    Catch::Contains("input 1") && Catch::Contains("different tape"));
  CHECK_THROWS_AS(tg::stack(Vars{a, tg::Var<double>{}}, 0), tg::StateError);
  CHECK(t.size() == before + 1);  // only the successful concat was recorded
}

TEST_CASE("split sizes that do not sum to the axis and a zero split_size are ValueErrors") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({3, 5}), true);
  auto e = t.input(xt::xarray<double>::from_shape({3, 0}), true);
  const auto before = t.size();
  CHECK_THROWS_WITH(tg::split(x, std::vector<std::size_t>{2, 2}, 1),
                    Catch::Contains("split") && Catch::Contains("[2, 2]") && Catch::Contains("sum to 4") &&
                        Catch::Contains("size 5"));
  CHECK_THROWS_AS(tg::split(x, std::vector<std::size_t>{2, 2}, 1), tg::ValueError);
  CHECK_THROWS_WITH(tg::split(x, 0, 1), Catch::Contains("split_size") && Catch::Contains("size 5"));
  CHECK(t.size() == before);
  // torch.split semantics for what is allowed
  CHECK(tg::split(e, 0, 1).size() == 1);
  CHECK(tg::split(e, 2, 1).size() == 1);
  const auto pieces = tg::split(x, 2, 1);
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[2].shape() == tg::Shape{3, 1});
  CHECK(tg::split(x, 7, -1).size() == 1);
}
