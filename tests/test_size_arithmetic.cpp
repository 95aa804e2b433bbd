// Sizes that would wrap around, and indices past the end. Every product or sum of sizes a
// caller gives (shapes, module sizes, generator counts, batch sizes) is checked arithmetic:
// the result is either right or a tapegrad error naming the values, never a wrapped-around
// size. Indices given to public functions are checked against what they index.
//
// Huge sizes are exercised without allocating them: an overflowing product is rejected before
// any allocation, and a huge dim next to a 0 dim makes an empty array.
#include <cstdint>
#include <limits>
#include <random>
#include <typeinfo>

#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

constexpr std::size_t kMax = tg::kMaxSize;  // 2^63 - 1
constexpr std::size_t kSizeMax = std::numeric_limits<std::size_t>::max();
constexpr std::size_t k2p31 = std::size_t(1) << 31, k2p32 = std::size_t(1) << 32,
                      k2p62 = std::size_t(1) << 62;

std::string str(std::size_t n) { return std::to_string(n); }

using tgtest::TapeSnapshot;

xt::xarray<double> iota(const tg::Shape& shape) {
  xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<double>(i);
  return a;
}

}  // namespace

// ---- the helpers ---------------------------------------------------------------------------

TEST_CASE("checked_mul, checked_add and checked_numel are exact up to 2^63 - 1 and throw past it") {
  CHECK(tg::checked_mul("m", k2p31, k2p31) == k2p62);
  CHECK(tg::checked_mul("m", kMax, 1) == kMax);
  CHECK(tg::checked_mul("m", 0, kMax) == 0);
  expect_error<tg::ValueError>([] { tg::checked_mul("m", k2p32, k2p32); },
                               {"m", str(k2p32) + " * " + str(k2p32)});
  expect_error<tg::ValueError>([] { tg::checked_mul("m", k2p31, k2p32); }, {"m", str(k2p31), str(k2p32)});
  expect_error<tg::ValueError>([] { tg::checked_mul("m", 0, kSizeMax); }, {"m", str(kSizeMax), "-1"});
  CHECK(tg::checked_add("a", kMax - 1, 1) == kMax);
  expect_error<tg::ValueError>([] { tg::checked_add("a", kMax, 1); }, {"a", str(kMax) + " + 1"});
  expect_error<tg::ValueError>([] { tg::checked_size("n", kSizeMax - 1); }, {"n", str(kSizeMax - 1), "-2"});
  CHECK(tg::checked_size("n", kMax) == kMax);

  CHECK(tg::checked_numel("op", tg::Shape{k2p31, k2p31}) == k2p62);
  CHECK(tg::checked_numel("op", tg::Shape{0, kMax}) == 0);
  CHECK(tg::checked_numel("op", tg::Shape{}) == 1);
  CHECK(tg::numel(tg::Shape{2, 3, 4}) == 24);
  expect_error<tg::ShapeError>(
      [] {
        tg::checked_numel("op", tg::Shape{4, k2p62 + 1});
      },
      {"op", "(4, " + str(k2p62 + 1) + ")"});
  // The non-zero dims must fit even when another dim is 0: every stride of a shape then fits.
  expect_error<tg::ShapeError>([] { tg::checked_numel("op", tg::Shape{0, k2p62, 4}); }, {"op", str(k2p62)});
  expect_error<tg::ShapeError>([] { tg::numel(tg::Shape{0, kSizeMax}); }, {str(kSizeMax), "-1"});
}

TEST_CASE("broadcasting two shapes whose result overflows is a ShapeError naming both") {
  expect_error<tg::ShapeError>(
      [] {
        tg::broadcast_shapes("add", tg::Shape{k2p32, 1}, tg::Shape{1, k2p32});
      },
      {"add", "(" + str(k2p32) + ", " + str(k2p32) + ")"});
}

// ---- the shape ops ----------------------------------------------------------------------------

TEST_CASE("reshape of (4) into (4, 2^62 + 1) is a ShapeError naming the sizes, and the tape is unchanged") {
  tg::Tape<double> t;
  auto x = t.input(iota({4}), true);
  TapeSnapshot<double> s(t);
  const auto big = static_cast<std::ptrdiff_t>(k2p62 + 1);
  expect_error<tg::ShapeError>(
      [&] {
        tg::reshape(x, {4, big});
      },
      {"reshape", "(4)", "(4, " + str(k2p62 + 1) + ")", "overflow"});
  expect_error<tg::ShapeError>(
      [&] {
        tg::reshape(x, {-1, big, 4});
      },
      {"reshape", "(-1, " + str(k2p62 + 1) + ", 4)"});
  expect_error<tg::ShapeError>([&] { tg::reshape(x, {0, big, 4}); }, {"reshape", str(k2p62 + 1)});
  s.check_unchanged();
}

TEST_CASE("split with sizes that wrap around to the axis size is a ValueError naming the list") {
  tg::Tape<double> t;
  auto x = t.input(iota({4, 2}), true);
  TapeSnapshot<double> s(t);
  // SIZE_MAX + 5 wraps around to 4, the size of the axis.
  expect_error<tg::ValueError>(
      [&] {
        tg::split(x, std::vector<std::size_t>{kSizeMax, 5});
      },
      {"split", str(kSizeMax), "-1"});
  expect_error<tg::ValueError>(
      [&] {
        tg::split(x, std::vector<std::size_t>{2, kMax, kMax, 4});
      },
      {"split", "[2, " + str(kMax) + ", " + str(kMax) + ", 4]", "position 1"});
  expect_error<tg::ValueError>([&] { tg::split(x, kSizeMax); }, {"split_size", str(kSizeMax), "-1"});
  s.check_unchanged();
  // The largest valid split_size gives one piece, the whole axis.
  const auto pieces = tg::split(x, kMax);
  REQUIRE(pieces.size() == 1);
  CHECK((pieces[0].value() == iota({4, 2})));
  CHECK(tg::split(x, kMax - 1, 1).size() == 1);
}

TEST_CASE("concat of empty Vars whose axis sizes sum past 2^63 - 1 is a ValueError naming the sizes") {
  tg::Tape<double> t;
  auto a = t.input(xt::xarray<double>::from_shape({0, k2p62}));
  auto b = t.input(xt::xarray<double>::from_shape({0, k2p62}));
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>(
      [&] {
        tg::concat<double>({a, b}, 1);
      },
      {"concat", str(k2p62) + " + " + str(k2p62)});
  s.check_unchanged();
  const auto y = tg::concat<double>({a, b, a}, 0);
  CHECK(y.shape() == tg::Shape{0, k2p62});
}

TEST_CASE("shape ops on empty Vars with a dim of 2^40 give empty results without walking that dim") {
  // Without the early exits these would copy 0 elements 2^40 times, or store 2^40 indices.
  const std::size_t big = std::size_t(1) << 40;
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({big, 3, 0}), true);
  CHECK(tg::slice(x, 0, 0, tg::kSliceEnd).shape() == tg::Shape{big, 3, 0});
  CHECK(tg::slice(x, 1, 1, 3).shape() == tg::Shape{big, 2, 0});
  CHECK(tg::select(x, 1, -1).shape() == tg::Shape{big, 0});
  CHECK(tg::index_select(x, 1, {2, 0, 2, 1}).shape() == tg::Shape{big, 4, 0});
  CHECK(tg::permute(x, {2, 0, 1}).shape() == tg::Shape{0, big, 3});
  CHECK(tg::transpose(x, 0, 1).shape() == tg::Shape{3, big, 0});
  CHECK(tg::stack<double>({x, x}, 2).shape() == tg::Shape{big, 3, 2, 0});
  CHECK(tg::concat<double>({x, x}, 1).shape() == tg::Shape{big, 6, 0});
  const auto halves = tg::split(x, big / 2, 0);
  REQUIRE(halves.size() == 2);
  CHECK(halves[1].shape() == tg::Shape{big / 2, 3, 0});
  CHECK(tg::reshape(x, {static_cast<std::ptrdiff_t>(3 * big), -1}).shape() == tg::Shape{3 * big, 0});
  CHECK(tg::flatten(x, 0, 1).shape() == tg::Shape{3 * big, 0});
}

// ---- module constructors ------------------------------------------------------------------

TEST_CASE("Linear(2^32, 2^32) is a ValueError naming both sizes, not a module with an empty weight") {
  tg::Generator gen(1);
  expect_error<tg::ValueError>([&] { tg::Linear<float>(k2p32, k2p32, {}, gen); },
                               {"Linear", "out_features * in_features", str(k2p32) + " * " + str(k2p32)});
  expect_error<tg::ValueError>([&] { tg::Linear<float>(static_cast<std::size_t>(-3), 2, {}, gen); },
                               {"Linear: in_features", str(kSizeMax - 2), "-3"});
  expect_error<tg::ValueError>([&] { tg::Linear<float>(0, kSizeMax, {}, gen); },
                               {"Linear: out_features", "-1"});
  // The generator drew nothing for the rejected modules: the next one equals a fresh one's.
  tg::Generator fresh(1);
  CHECK((tg::Linear<float>(3, 2, {}, gen).weight->value == tg::Linear<float>(3, 2, {}, fresh).weight->value));
}

TEST_CASE("the norm and recurrent module constructors reject negative sizes and overflowing products") {
  tg::Generator gen(0);
  const auto m1 = static_cast<std::size_t>(-1);
  expect_error<tg::ShapeError>(
      [] {
        tg::LayerNorm<float>(tg::Shape{k2p32, k2p32});
      },
      {"LayerNorm", str(k2p32)});
  expect_error<tg::ShapeError>([] { tg::LayerNorm<float>(tg::Shape{m1}); }, {"LayerNorm", "-1"});
  expect_error<tg::ValueError>([&] { tg::BatchNorm1d<float>{m1}; }, {"BatchNorm1d: num_features", "-1"});
  expect_error<tg::ValueError>([&] { tg::RNN<float>(k2p32, k2p32, {}, gen); },
                               {"RNN: the first layer's weights", str(k2p32) + " * " + str(2 * k2p32)});
  expect_error<tg::ValueError>([&] { tg::RNN<float>(m1, 4, {}, gen); }, {"RNN: input_size", "-1"});
  expect_error<tg::ValueError>([&] { tg::RNN<float>(2, 4, tg::RNNOptions().num_layers(m1), gen); },
                               {"RNN: num_layers", "-1"});
  expect_error<tg::ValueError>([&] { tg::RNN<float>(2, k2p31, tg::RNNOptions().num_layers(4), gen); },
                               {"RNN: a layer's weights", str(k2p31) + " * " + str(k2p32)});
  expect_error<tg::ValueError>([&] { tg::LNRNN<float>(k2p62, 2, {}, gen); }, {"LNRNN", str(k2p62)});
  expect_error<tg::ValueError>([&] { tg::BNRNN<float>(3, 4, tg::BNRNNOptions().max_length(k2p62), gen); },
                               {"BNRNN: max_length * hidden_size", str(k2p62) + " * 4"});
  expect_error<tg::ValueError>([] { tg::RecurrentLayerNorm<float>(m1, 1e-5); }, {"RecurrentLayerNorm", "-1"});
  expect_error<tg::ValueError>([] { tg::SequenceBatchNorm<float>(k2p32, k2p32, 1.0, 1e-5, 0.1); },
                               {"SequenceBatchNorm", str(k2p32)});
}

// ---- data ---------------------------------------------------------------------------------

TEST_CASE("synthetic generators reject counts that are negative ints or whose element counts overflow") {
  expect_error<tg::ValueError>([] { tg::adding_problem<float>(k2p62, 4, 0); },
                               {"adding_problem", str(k2p62) + " * 4"});
  expect_error<tg::ValueError>([] { tg::parity<float>(static_cast<std::size_t>(-5), 3, 0); },
                               {"parity: n", "-5"});
  expect_error<tg::ValueError>([] { tg::sine_next_step<float>(k2p32, k2p32, 0); },
                               {"sine_next_step", str(k2p32)});
  expect_error<tg::ValueError>([] { tg::gaussian_blobs<float>(4, k2p32, k2p32, 1.0, 0); },
                               {"gaussian_blobs", "centers * dim"});
  expect_error<tg::ValueError>([] { tg::two_spirals<float>(k2p62, 0.0, 0); }, {"two_spirals", str(k2p62)});
  expect_error<tg::ValueError>([] { tg::moons<float>(kSizeMax, 0.0, 0); }, {"moons: n", "-1"});
}

TEST_CASE("a Dataset with a largest label of 2^63 - 1 has no num_classes: a ValueError, not 2^63") {
  tg::Dataset<float> d(xt::xarray<float>::from_shape({2, 1}),
                       std::vector<std::int64_t>{0, std::numeric_limits<std::int64_t>::max()});
  expect_error<tg::ValueError>([&] { d.num_classes(); }, {"num_classes", str(kMax) + " + 1"});
}

TEST_CASE("a Dataset of inputs whose non-zero dims overflow is a ShapeError naming the shape") {
  // 2^62 examples of shape (4, 0): no elements, but 2^62 * 4 overflows.
  expect_error<tg::ShapeError>(
      [] {
        tg::Dataset<float>(xt::xarray<float>::from_shape({k2p62, 4, 0}));
      },
      {"Dataset", "(" + str(k2p62) + ", 4, 0)"});
}

TEST_CASE("DataLoader::fill_batch with an order holding an index past the dataset's end is a ValueError") {
  tg::Dataset<float> d(tgtest::randn<float>({5, 2}, 3), std::vector<std::int64_t>{0, 1, 0, 1, 1});
  tg::DataLoader<float> loader(d, 2);
  tg::Batch<float> b;
  loader.fill_batch({0, 1, 2, 3, 4}, 1, b);
  const tg::Batch<float> before = b;
  expect_error<tg::ValueError>(
      [&] {
        loader.fill_batch({0, 1, 2, 1000000, 4}, 1, b);
      },
      {"fill_batch", "order[3] = 1000000", "5 examples"});
  expect_error<tg::ValueError>(
      [&] {
        loader.fill_batch({0, 1, 2, 3, kSizeMax}, 2, b);
      },
      {"fill_batch", str(kSizeMax)});
  CHECK(b.indices == before.indices);
  CHECK((b.inputs == before.inputs));
  CHECK(b.labels == before.labels);
  expect_error<tg::ValueError>([&] { loader.fill_batch({0, 1, 2, 3, 4}, 3, b); }, {"batch 3", "3 batches"});
}

TEST_CASE(
    "DataLoader with batch size SIZE_MAX (a -1) is a ValueError; a batch larger than the dataset is one batch") {
  tg::Dataset<float> d(tgtest::randn<float>({5, 2}, 3), std::vector<std::int64_t>{0, 1, 0, 1, 1});
  expect_error<tg::ValueError>([&] { tg::DataLoader<float>(d, kSizeMax); },
                               {"DataLoader: batch_size", str(kSizeMax), "-1"});
  for (const std::size_t bs : {std::size_t(6), k2p62, kMax}) {
    tg::DataLoader<float> loader(d, bs, true, 7);
    CHECK(loader.size() == 1);
    std::size_t batches = 0;
    for (const auto& b : loader) {
      CHECK(b.size() == 5);
      ++batches;
    }
    CHECK(batches == 1);
    CHECK(tg::DataLoader<float>(d, bs, false, 0, /*drop_last=*/true).size() == 0);
  }
}

TEST_CASE("parse_mnist_digits with max_images of -1 is a ValueError; a huge max_images means no limit") {
  std::string json = "{\"data\": [";
  for (std::size_t i = 0; i < 2 * tg::kMnistPixels; ++i) json += i ? ",0.5" : "0.5";
  json += "]}";
  expect_error<tg::ValueError>([&] { tg::parse_mnist_digits<float>(json, kSizeMax); }, {"max_images", "-1"});
  // (2^60 + 1) * 784 = 49 * 2^64 + 784 would wrap around to a limit of one image.
  CHECK(tg::parse_mnist_digits<float>(json, (std::size_t(1) << 60) + 1).shape() ==
        tg::Shape{2, tg::kMnistPixels});
  CHECK(tg::parse_mnist_digits<float>(json, kMax).shape() == tg::Shape{2, tg::kMnistPixels});
  CHECK(tg::parse_mnist_digits<float>(json, 1).shape() == tg::Shape{1, tg::kMnistPixels});
}

// ---- the property test --------------------------------------------------------------------

namespace {

__extension__ typedef unsigned __int128 u128;  // exact products of two or more sizes

// Boundary sizes: small, around 2^31, 2^32, 2^62, 2^63 - 1 (= SIZE_MAX / 2, the largest
// size), SIZE_MAX (a -1), and factors whose products just overflow 2^63 - 1.
const std::vector<std::size_t> kPool = {0,
                                        1,
                                        2,
                                        3,
                                        4,
                                        5,
                                        6,
                                        k2p31,
                                        k2p31 + 1,
                                        k2p32,
                                        k2p32 + 1,
                                        k2p62,
                                        k2p62 + 1,
                                        kMax / 2,
                                        kMax / 2 + 1,
                                        kMax / 3,
                                        kMax / 3 + 1,
                                        kMax - 1,
                                        kMax,
                                        kMax + 1,
                                        kSizeMax / 2 + 2,
                                        kSizeMax - 1,
                                        kSizeMax};

std::size_t pick(std::mt19937_64& rng) { return kPool[rng() % kPool.size()]; }

// The number of elements of a shape as the library defines it: 0 with a 0 dim, but the
// non-zero dims must multiply to at most 2^63 - 1 anyway; -1 when that fails.
std::int64_t model_numel(const std::vector<std::size_t>& dims) {
  u128 p = 1;
  bool empty = false;
  for (auto d : dims) {
    if (d > kMax) return -1;
    if (d == 0) {
      empty = true;
    } else {
      p *= d;
      if (p > kMax) return -1;
    }
  }
  return empty ? 0 : static_cast<std::int64_t>(p);
}

// Runs f, which must return normally (expected = "success"; f checks the result) or throw the
// tapegrad error named by `expected` with `part` in its message. f calls the op outside any
// CHECK, which would catch the exception itself.
template <class F>
void expect_outcome(const char* expected, F&& f, const std::string& part) {
  INFO("expected " << expected << " naming " << part);
  std::string got = "success";
  try {
    f();
  } catch (const tg::Error& e) {
    got = tgtest::kind(e);
    INFO("message: " << e.what());
    CHECK_THAT(std::string(e.what()), Catch::Contains(part));
  }
  CHECK(got == expected);
}

void reshape_case(std::mt19937_64& rng) {
  tg::Tape<double> t;
  const tg::Shape in = rng() % 2 ? tg::Shape{2, 3} : tg::Shape{0, 5};
  auto x = t.input(iota(in));
  std::vector<std::ptrdiff_t> dims(1 + rng() % 3);
  for (auto& d : dims) d = rng() % 4 == 0 ? -1 : static_cast<std::ptrdiff_t>(pick(rng));
  // The model: PyTorch's rules with exact arithmetic.
  const auto total = static_cast<std::int64_t>(tg::numel(in));
  std::size_t minus_ones = 0, bad = 0;
  std::vector<std::size_t> known;
  for (auto d : dims) {
    if (d == -1)
      ++minus_ones;
    else if (d < 0)
      ++bad;
    else
      known.push_back(static_cast<std::size_t>(d));
  }
  const std::int64_t k = model_numel(known);
  const char* expected = "success";
  if (bad > 0 || minus_ones > 1)
    expected = "ValueError";
  else if (k < 0 || (minus_ones == 1 && (k == 0 || total % k != 0)) || (minus_ones == 0 && k != total))
    expected = "ShapeError";
  const std::size_t before = t.size();
  expect_outcome(
      expected,
      [&] {
        auto y = tg::reshape(x, dims);
        for (std::size_t d = 0; d < dims.size(); ++d) {
          if (dims[d] != -1) CHECK(y.shape()[d] == static_cast<std::size_t>(dims[d]));
        }
        CHECK(tg::numel(y.shape()) == y.size());
        CHECK(y.size() == x.size());
        CHECK(std::equal(x.value().begin(), x.value().end(), y.value().begin()));
      },
      std::to_string(dims.back()));
  if (std::string(expected) != "success") CHECK(t.size() == before);
}

void linear_case(std::mt19937_64& rng) {
  const std::size_t in = pick(rng), out = pick(rng);
  const std::int64_t n = model_numel({in, out});
  if (n > 64 || (n >= 0 && out > 64)) return;  // valid sizes whose weight or bias would really allocate
  tg::Generator gen(0);
  const std::string named = in > kMax ? std::to_string(in) : std::to_string(out);
  expect_outcome(
      n < 0 ? "ValueError" : "success",
      [&] {
        tg::Linear<float> m(in, out, {}, gen);
        CHECK(m.weight->value.shape() == tg::Shape{out, in});
        CHECK(m.weight->value.size() == static_cast<std::size_t>(n));
      },
      named);
}

void split_case(std::mt19937_64& rng) {
  tg::Tape<double> t;
  std::size_t n = pick(rng);
  if (n > kMax) n = kMax;
  auto x = t.input(xt::xarray<double>::from_shape({n, 0}));
  std::vector<std::size_t> sizes(1 + rng() % 3);
  for (auto& s : sizes) s = rng() % 3 == 0 ? n / sizes.size() : pick(rng);
  u128 sum = 0;
  bool negative = false;
  for (auto s : sizes) {
    negative = negative || s > kMax;
    sum += s;
  }
  const char* expected = !negative && sum == n ? "success" : "ValueError";
  const std::size_t before = t.size();
  expect_outcome(
      expected,
      [&] {
        const auto pieces = tg::split(x, sizes);
        REQUIRE(pieces.size() == sizes.size());
        for (std::size_t k = 0; k < sizes.size(); ++k) CHECK(pieces[k].shape() == tg::Shape{sizes[k], 0});
      },
      "split");
  if (std::string(expected) != "success") CHECK(t.size() == before);
}

void concat_case(std::mt19937_64& rng) {
  tg::Tape<double> t;
  // xtensor's own stride arithmetic is signed: an array cannot have a dim above 2^63 - 1.
  const std::size_t a = std::min(pick(rng), kMax), b = std::min(pick(rng), kMax);
  auto xa = t.input(xt::xarray<double>::from_shape({0, a}));
  auto xb = t.input(xt::xarray<double>::from_shape({0, b}));
  const std::size_t before = t.size();
  const char* expected = u128(a) + b > kMax ? "ValueError" : "success";
  expect_outcome(
      expected,
      [&] {
        const auto y = tg::concat<double>({xa, xb}, 1);
        CHECK(y.shape() == tg::Shape{0, a + b});
      },
      std::to_string(a) + " + " + std::to_string(b));
  // Stacking two (0, a) makes (0, 2, a), whose non-zero dims must fit.
  expect_outcome(
      model_numel({2, a}) < 0 ? "ShapeError" : "success",
      [&] {
        const auto y = tg::stack<double>({xa, xa}, 1);
        CHECK(y.shape() == tg::Shape{0, 2, a});
      },
      std::to_string(a));
  CHECK(t.size() == before + (std::string(expected) == "success") + (model_numel({2, a}) >= 0));
}

void numel_case(std::mt19937_64& rng) {
  std::vector<std::size_t> dims(1 + rng() % 4);
  for (auto& d : dims) d = pick(rng);
  const std::int64_t n = model_numel(dims);
  const tg::Shape s(dims.begin(), dims.end());
  expect_outcome(
      n < 0 ? "ShapeError" : "success",
      [&] {
        const std::size_t got = tg::checked_numel("op", s);
        CHECK(got == static_cast<std::size_t>(n));
      },
      tg::shape_str(s));
}

void loader_case(std::mt19937_64& rng) {
  static const tg::Dataset<float> d(xt::xarray<float>::from_shape({5, 1}));
  const std::size_t bs = pick(rng);
  expect_outcome(
      bs == 0 || bs > kMax ? "ValueError" : "success",
      [&] {
        tg::DataLoader<float> loader(d, bs);
        CHECK(loader.size() == (5 + u128(bs) - 1) / bs);
      },
      std::to_string(bs));
}

void select_case(std::mt19937_64& rng) {
  tg::Tape<double> t;
  auto x = t.input(iota({3, 4}));
  const auto i = static_cast<std::ptrdiff_t>(pick(rng));
  expect_outcome(
      i >= -4 && i < 4 ? "success" : "ValueError",
      [&] {
        const auto y = tg::select(x, 1, i);
        const xt::xarray<double> expected_column = xt::view(iota({3, 4}), xt::all(), i < 0 ? i + 4 : i);
        CHECK((y.value() == expected_column));
      },
      std::to_string(i));
  const auto start = static_cast<std::ptrdiff_t>(pick(rng)), step = static_cast<std::ptrdiff_t>(pick(rng));
  expect_outcome(
      step >= 1 ? "success" : "ValueError",
      [&] {
        const auto y = tg::slice(x, 1, start, tg::kSliceEnd, step);
        const std::ptrdiff_t s = std::clamp<std::ptrdiff_t>(start < 0 ? start + 4 : start, 0, 4);
        CHECK(y.shape() == tg::Shape{3, s < 4 ? static_cast<std::size_t>((4 - s - 1) / step + 1) : 0});
      },
      std::to_string(step));
}

}  // namespace

TEST_CASE(
    "shape ops, Linear, split, concat and DataLoader over random boundary sizes are right or a typed error") {
  std::mt19937_64 rng(20261202);
  for (int it = 0; it < 3000; ++it) {
    INFO("iteration " << it);
    switch (rng() % 7) {
      case 0:
        reshape_case(rng);
        break;
      case 1:
        linear_case(rng);
        break;
      case 2:
        split_case(rng);
        break;
      case 3:
        concat_case(rng);
        break;
      case 4:
        numel_case(rng);
        break;
      case 5:
        loader_case(rng);
        break;
      default:
        select_case(rng);
        break;
    }
  }
}

TEST_CASE("Sequential indexing past the last layer is a ValueError naming the index and the size") {
  tg::Sequential<float> seq;
  seq.emplace_back<tg::Tanh<float>>();
  CHECK(seq[0].type_name() == "Tanh");
  expect_error<tg::ValueError>([&] { seq[1]; }, {"Sequential", "index 1", "1 layers"});
  expect_error<tg::ValueError>([&] { seq[kSizeMax]; }, {"Sequential", str(kSizeMax)});
}

TEST_CASE("backward through shape ops on empty Vars with a dim of 2^40 gives empty gradients at once") {
  const std::size_t big = std::size_t(1) << 40;
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({big, 3, 0}), true);
  auto w = t.input(xt::xarray<double>::from_shape({big, 2, 0}), true);
  const auto parts = tg::split(x, std::vector<std::size_t>{big / 4, big - big / 4});
  const auto y = tg::concat<double>({tg::slice(x, 1, 0, 2), tg::index_select(w, 1, {1, 0}),
                                     tg::permute(tg::slice(parts[1], 1, 1, 3), {0, 1, 2})},
                                    0);
  t.backward(y, xt::xarray<double>::from_shape(y.shape()));
  CHECK(t.grad(x).shape() == x.shape());
  CHECK(t.grad(w).shape() == w.shape());
}
