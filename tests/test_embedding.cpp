// The embedding op and the Embedding module: PyTorch's values and weight gradients
// (fixtures/embedding.json), gradchecks on odd shapes, the sparse row accumulation, and bad
// inputs.
#include <cmath>

#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::randn;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;
using Index = xt::xarray<std::int64_t>;

namespace {

Index to_index(const nlohmann::json& j) {
  tg::Shape shape;
  for (const auto& d : j.at("shape")) shape.push_back(d.get<std::size_t>());
  Index a = Index::from_shape(shape);
  const auto& data = j.at("data");
  REQUIRE(data.size() == a.size());
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = data[i].get<std::int64_t>();
  return a;
}

// An index array of shape s holding v everywhere.
Index filled(const tg::Shape& s, std::int64_t v) {
  Index a = Index::from_shape(s);
  a.fill(v);
  return a;
}

// 1 at the output elements of positions that do not look up padding_idx, 0 at those that do.
// padding_idx's gradient is 0 by definition, not the derivative (its row is still returned), so
// a gradcheck multiplies the output by this: the padded positions then do not depend on the
// weight, and the numerical Jacobian has 0 where the analytic one has.
xt::xarray<double> kept_positions(const Index& idx, const tg::Shape& weight,
                                  std::optional<std::int64_t> pad) {
  tg::Shape s = idx.shape();
  s.push_back(weight[1]);
  xt::xarray<double> keep = xt::xarray<double>::from_shape(s);
  const std::int64_t p = !pad ? -1 : *pad < 0 ? *pad + static_cast<std::int64_t>(weight[0]) : *pad;
  for (std::size_t i = 0; i < keep.size(); ++i) keep.data()[i] = idx.data()[i / weight[1]] == p ? 0.0 : 1.0;
  return keep;
}

std::optional<std::int64_t> padding_of(const nlohmann::json& c) {
  if (c.at("padding_idx").is_null()) return std::nullopt;
  return c.at("padding_idx").get<std::int64_t>();
}

}  // namespace

TEST_CASE("embedding matches PyTorch's output and weight gradient, with repeats and padding_idx") {
  const auto fx = tgtest::load_fixture("embedding.json");
  std::size_t n = 0;
  double worst_out = 0, worst_grad = 0;
  for (const auto& c : fx.at("cases")) {
    if (c.at("op") != "embedding") continue;
    ++n;
    INFO("case " << c.at("indices").dump() << " padding_idx " << c.at("padding_idx").dump());
    tg::Tape<double> t;
    auto w = t.input(tgtest::to_array(c.at("weight")), true);
    auto y = tg::embedding(to_index(c.at("indices")), w, padding_of(c));
    const double d_out = tgtest::max_abs_diff(y.value(), tgtest::to_array(c.at("out")));
    t.backward(y, tgtest::to_array(c.at("upstream")));
    const double d_grad = tgtest::max_abs_diff(t.grad(w), tgtest::to_array(c.at("grad_weight")));
    CHECK(d_out == 0.0);  // a copy
    CHECK(d_grad <= 1e-12);
    worst_out = std::max(worst_out, d_out);
    worst_grad = std::max(worst_grad, d_grad);
  }
  CHECK(n == 8);
  WARN("embedding vs PyTorch: max |out diff| " << worst_out << ", max |grad diff| " << worst_grad);
}

TEST_CASE("embedding output has shape indices.shape() + (embedding_dim) and copies the rows") {
  tg::Tape<float> t;
  xt::xarray<float> table = {{0, 1}, {10, 11}, {20, 21}};
  auto w = t.input(table, true);
  CHECK(tg::embedding(Index{2, 0, 2}, w).value() == xt::xarray<float>{{20, 21}, {0, 1}, {20, 21}});
  CHECK(tg::embedding(Index{{1, 2}, {0, 1}}, w).shape() == tg::Shape({2, 2, 2}));
  CHECK(tg::embedding(Index(1), w).value() == xt::xarray<float>{10, 11});  // 0-d index -> (D)
  CHECK(tg::embedding(Index::from_shape({0, 3}), w).shape() == tg::Shape({0, 3, 2}));
  // The padding row's value is still returned: padding_idx only stops its gradient.
  CHECK(tg::embedding(Index{1}, w, 1).value() == xt::xarray<float>{{10, 11}});
}

TEST_CASE("embedding backward adds each position's gradient into its row and skips padding_idx") {
  tg::Tape<double> t;
  auto w = t.input(xt::xarray<double>::from_shape({4, 2}), true);
  auto y = tg::embedding(Index{{3, 1, 3}, {0, 3, 1}}, w, -1);  // -1 is row 3
  xt::xarray<double> up = {{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}};
  t.backward(y, up);
  CHECK(t.grad(w) == xt::xarray<double>{{7, 8}, {3 + 11, 4 + 12}, {0, 0}, {0, 0}});
  // Without padding_idx, row 3 gets its three positions' gradients.
  tg::Tape<double> t2;
  auto w2 = t2.input(xt::xarray<double>::from_shape({4, 2}), true);
  t2.backward(tg::embedding(Index{{3, 1, 3}, {0, 3, 1}}, w2), up);
  CHECK(t2.grad(w2)(3, 0) == 1 + 5 + 9);
  CHECK(t2.grad(w2)(3, 1) == 2 + 6 + 10);
}

TEST_CASE("embedding passes gradcheck on odd shapes: one row, dim 1, a 0-d index, every position padded") {
  struct Case {
    tg::Shape weight;
    Index indices;
    std::optional<std::int64_t> padding;
  };
  const std::vector<Case> cases = {
      {{5, 3}, Index{{1, 3, 1}, {4, 4, 0}}, std::nullopt},
      {{5, 3}, Index{{1, 3, 1}, {4, 4, 0}}, 4},
      {{5, 3}, Index{{1, 3, 1}, {4, 4, 0}}, -5},
      {{1, 1}, Index{0}, std::nullopt},
      {{3, 1}, filled({2, 1}, 2), 0},
      {{4, 2}, Index(3), std::nullopt},
      {{2, 4}, filled({1, 1, 1}, 1), 1},
      {{6, 2}, filled({1, 1, 1}, 5), std::nullopt},
  };
  for (const auto& c : cases) {
    INFO("weight " << tg::shape_str(c.weight) << ", indices " << tg::shape_str(c.indices.shape()));
    const Index idx = c.indices;
    const auto pad = c.padding;
    const xt::xarray<double> keep = kept_positions(idx, c.weight, pad);
    CHECK_GRADCHECK(
        [idx, pad, keep](tg::Tape<double>& t, const Vars& v) {
          return tg::embedding(idx, v[0], pad) * t.constant(keep);
        },
        Arrays{randn(c.weight, 71)});
  }
}

TEST_CASE("the Embedding module: N(0, 1) init with a zero padding row, PyTorch's name and repr") {
  tg::Generator gen(3);
  tg::Embedding<double> emb(1000, 8, tg::EmbeddingOptions().padding_idx(-2), gen);
  REQUIRE(emb.weight->shape() == tg::Shape({1000, 8}));
  REQUIRE(emb.padding_idx());
  CHECK(*emb.padding_idx() == 998);
  CHECK(emb.extra_repr() == "1000, 8, padding_idx=998");
  CHECK(emb.named_parameters().size() == 1);
  CHECK(emb.named_parameters()[0].first == "weight");
  double mean = 0, sq = 0;
  std::size_t n = 0;
  for (std::size_t r = 0; r < 1000; ++r) {
    for (std::size_t j = 0; j < 8; ++j) {
      const double v = (*emb.weight).value(r, j);
      if (r == 998) {
        CHECK(v == 0.0);
        continue;
      }
      mean += v;
      sq += v * v;
      ++n;
    }
  }
  mean /= static_cast<double>(n);
  const double var = sq / static_cast<double>(n) - mean * mean;
  CHECK(std::abs(mean) < 0.05);  // 7992 draws: the standard error of the mean is ~0.011
  CHECK(std::abs(var - 1.0) < 0.06);
  tg::Embedding<float> plain(4, 2);
  CHECK(plain.extra_repr() == "4, 2");
  CHECK(!plain.padding_idx());
}

TEST_CASE(
    "the Embedding module looks up index arrays and Sequential-style Vars, and trains only unpadded rows") {
  tg::Generator gen(5);
  tg::Embedding<double> emb(6, 3, tg::EmbeddingOptions().padding_idx(0), gen);
  tg::Tape<double> t;
  auto y = emb(t, Index{{0, 2}, {5, 2}});
  REQUIRE(y.shape() == tg::Shape({2, 2, 3}));
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(y.value()(1, 0, j) == emb.weight->value(5, j));
    CHECK(y.value()(0, 0, j) == 0.0);
  }
  auto as_var = emb(t, t.input(xt::xarray<double>{{0, 2}, {5, 2}}));
  CHECK(as_var.value() == y.value());
  t.backward(tg::sum(y) + tg::sum(as_var));
  const auto& g = emb.weight->grad();
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(g(0, j) == 0.0);  // padding
    CHECK(g(2, j) == 4.0);  // twice in each of the two lookups
    CHECK(g(5, j) == 2.0);
    CHECK(g(1, j) == 0.0);  // never looked up
  }
}

TEST_CASE("Embedding::from_pretrained keeps the table as given and freezes it by default") {
  const xt::xarray<double> table = {{1, 2}, {3, 4}, {5, 6}};
  auto frozen = tg::Embedding<double>::from_pretrained(table, true, tg::EmbeddingOptions().padding_idx(1));
  CHECK((frozen.weight->value == table));  // the padding row is not zeroed
  CHECK(!frozen.weight->requires_grad);
  CHECK(*frozen.padding_idx() == 1);
  auto trained = tg::Embedding<double>::from_pretrained(table, false);
  CHECK(trained.weight->requires_grad);
  tg::Tape<double> t;
  t.backward(tg::sum(trained(t, Index{2, 2})));
  CHECK(trained.weight->grad() == xt::xarray<double>{{0, 0}, {0, 0}, {2, 2}});
}

TEST_CASE("the Embedding module passes gradcheck with respect to its weight") {
  tg::Generator gen(8);
  tg::Embedding<double> emb(4, 2, tg::EmbeddingOptions().padding_idx(3), gen);
  const Index idx = {{3, 1}, {1, 0}, {2, 3}};
  const xt::xarray<double> keep = kept_positions(idx, {4, 2}, 3);
  CHECK_GRADCHECK(
      [&emb, idx, keep](tg::Tape<double>& t, const Vars& v) {
        t.bind_param(*emb.weight, v[0]);
        return tg::sum(tg::tanh(emb(t, idx)) * t.constant(keep));
      },
      Arrays{emb.weight->value});
}

TEST_CASE("embedding with an index out of range is a ValueError naming it, its position and num_embeddings") {
  tg::Tape<double> t;
  auto w = t.input(xt::xarray<double>::from_shape({5, 3}), true);
  auto cube = t.input(xt::xarray<double>::from_shape({5, 3, 1}), true);
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::ValueError>(
      [&] {
        tg::embedding(Index{{0, 1, 2}, {3, 5, 1}}, w);
      },
      {"embedding", "index 5", "position (1, 1)", "num_embeddings 5"});
  expect_error<tg::ValueError>([&] { tg::embedding(Index{-1}, w); },
                               {"index -1", "position (0)", "num_embeddings 5"});
  expect_error<tg::ValueError>([&] { tg::embedding(Index{0}, w, 5); }, {"padding_idx 5", "num_embeddings 5"});
  expect_error<tg::ValueError>([&] { tg::embedding(Index{0}, w, -6); }, {"padding_idx -6"});
  expect_error<tg::ShapeError>([&] { tg::embedding(Index{0}, cube); }, {"embedding", "2-D", "(5, 3, 1)"});
  expect_error<tg::StateError>([&] { tg::embedding(Index{0}, tg::Var<double>()); }, {"embedding"});
  snap.check_unchanged();
}

TEST_CASE("the Embedding module refuses bad sizes, padding_idx and inputs, and leaves the tape unchanged") {
  expect_error<tg::ValueError>([] { tg::Embedding<float>(0, 3); }, {"num_embeddings 0"});
  expect_error<tg::ValueError>([] { tg::Embedding<float>(3, 0); }, {"embedding_dim 0"});
  expect_error<tg::ValueError>([] { tg::Embedding<float>(static_cast<std::size_t>(-1), 3); },
                               {"num_embeddings", "-1"});
  expect_error<tg::ValueError>([] { tg::Embedding<float>(std::size_t(1) << 40, std::size_t(1) << 40); },
                               {"num_embeddings * embedding_dim"});
  expect_error<tg::ValueError>([] { tg::Embedding<float>(4, 2, tg::EmbeddingOptions().padding_idx(4)); },
                               {"padding_idx 4", "num_embeddings 4"});
  expect_error<tg::ValueError>([] { tg::Embedding<float>(4, 2, tg::EmbeddingOptions().padding_idx(-5)); },
                               {"padding_idx -5"});
  expect_error<tg::ShapeError>(
      [] {
        tg::Embedding<float>::from_pretrained(xt::xarray<float>{1, 2});
      },
      {"from_pretrained", "(2)"});
  tg::Embedding<float> emb(4, 2);
  tg::Tape<float> t;
  auto frac = t.input(xt::xarray<float>{1.0f, 2.5f});
  xt::xarray<float> four = xt::xarray<float>::from_shape({2, 1});
  four(0, 0) = 1.0f;
  four(1, 0) = 4.0f;
  auto big = t.input(four);
  const tgtest::TapeSnapshot<float> snap(t);
  expect_error<tg::ValueError>(
      [&] {
        emb(t, Index{{1, 7}});
      },
      {"index 7", "position (0, 1)", "num_embeddings 4"});
  expect_error<tg::ValueError>([&] { emb(t, frac); }, {"Embedding", "2.5", "position 1"});
  expect_error<tg::ValueError>([&] { emb(t, big); }, {"Embedding", "value 4", "[0, 4)"});
  snap.check_unchanged();
}
