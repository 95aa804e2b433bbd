// Datasets, the DataLoader and the synthetic generators.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "support.hpp"

namespace tg = tapegrad;

namespace {

// inputs (n, 2) with row i = (i, -i), labels i % 3.
tg::Dataset<double> counting_dataset(std::size_t n) {
  xt::xarray<double> x = xt::xarray<double>::from_shape({n, 2});
  std::vector<std::int64_t> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    x(i, 0) = static_cast<double>(i);
    x(i, 1) = -static_cast<double>(i);
    y[i] = static_cast<std::int64_t>(i % 3);
  }
  return tg::Dataset<double>(x, y);
}

// Runs one epoch and returns the dataset indices in visiting order, checking that each batch's
// rows and labels are those of its indices.
std::vector<std::size_t> run_epoch(tg::DataLoader<double>& loader,
                                   std::vector<std::size_t>* sizes = nullptr) {
  std::vector<std::size_t> seen;
  for (const auto& b : loader) {
    REQUIRE(b.inputs.shape() == tg::Shape({b.size(), 2}));
    REQUIRE(b.labels.size() == b.size());
    for (std::size_t r = 0; r < b.size(); ++r) {
      const std::size_t i = b.indices[r];
      CHECK(b.inputs(r, 0) == static_cast<double>(i));
      CHECK(b.inputs(r, 1) == -static_cast<double>(i));
      CHECK(b.labels[r] == static_cast<std::int64_t>(i % 3));
      seen.push_back(i);
    }
    if (sizes) sizes->push_back(b.size());
  }
  return seen;
}

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

TEST_CASE("a Dataset rejects labels or targets whose count differs from the inputs, naming both") {
  xt::xarray<double> x = xt::zeros<double>({4, 3});
  CHECK_THROWS_AS(tg::Dataset<double>(x, std::vector<std::int64_t>{0, 1, 2}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::Dataset<double>(x, std::vector<std::int64_t>{0, 1, 2}),
                    Catch::Contains("(4, 3)") && Catch::Contains("3 labels"));
  CHECK_THROWS_WITH(tg::Dataset<double>(x, xt::xarray<double>(xt::zeros<double>({5, 1}))),
                    Catch::Contains("(4, 3)") && Catch::Contains("(5, 1)"));
  CHECK_THROWS_AS(tg::Dataset<double>(x, std::vector<std::int64_t>{0, 1, -1, 2}), tg::ValueError);
  CHECK_THROWS_AS(tg::Dataset<double>(xt::xarray<double>(3.0)), tg::ShapeError);
}

TEST_CASE("a Dataset reports its kind and refuses to hand out what it does not have") {
  auto d = counting_dataset(5);
  CHECK(d.size() == 5);
  CHECK(d.has_labels());
  CHECK(d.num_classes() == 3);
  CHECK(d.example_shape() == tg::Shape({2}));
  CHECK_THROWS_AS(d.targets(), tg::StateError);
  tg::Dataset<double> r(xt::xarray<double>(xt::zeros<double>({3, 4, 2})),
                        xt::xarray<double>(xt::ones<double>({3, 1})));
  CHECK(r.has_targets());
  CHECK(r.target_shape() == tg::Shape({1}));
  CHECK_THROWS_WITH(r.labels(), Catch::Contains("targets()"));
  CHECK(tg::Dataset<double>().empty());
}

TEST_CASE("subset takes the examples at the given indices, in that order") {
  auto d = counting_dataset(6);
  auto s = d.subset({4, 1, 4});
  REQUIRE(s.size() == 3);
  CHECK(s.inputs() == xt::xarray<double>{{4, -4}, {1, -1}, {4, -4}});
  CHECK(s.labels() == std::vector<std::int64_t>{1, 1, 1});
  CHECK_THROWS_WITH(d.subset({0, 6}), Catch::Contains("index 6") && Catch::Contains("6 examples"));
}

TEST_CASE("train_test_split partitions the examples with ceil(fraction * N) in the test part") {
  auto d = counting_dataset(10);
  auto [train, test] = tg::train_test_split(d, 0.25, 7);
  CHECK(test.size() == 3);
  CHECK(train.size() == 7);
  std::vector<std::size_t> all;
  for (const auto* part : {&train, &test}) {
    for (std::size_t r = 0; r < part->size(); ++r)
      all.push_back(static_cast<std::size_t>(part->inputs()(r, 0)));
  }
  std::sort(all.begin(), all.end());
  CHECK(all == iota(10));
  auto again = tg::train_test_split(d, 0.25, 7);
  CHECK(again.second.inputs() == test.inputs());
  auto other = tg::train_test_split(d, 0.25, 8);
  CHECK(other.second.inputs() != test.inputs());
  CHECK_THROWS_AS(tg::train_test_split(d, 0.0, 1), tg::ValueError);
  CHECK_THROWS_AS(tg::train_test_split(d, 1.0, 1), tg::ValueError);
  CHECK_THROWS_AS(tg::train_test_split(counting_dataset(1), 0.5, 1), tg::ValueError);
}

TEST_CASE("random_permutation is a permutation, and uniform over 3 elements") {
  std::mt19937_64 rng(3);
  std::map<std::vector<std::size_t>, int> counts;
  for (int k = 0; k < 6000; ++k) counts[tg::random_permutation(3, rng)]++;
  REQUIRE(counts.size() == 6);
  for (const auto& [perm, c] : counts) CHECK(std::abs(c - 1000) < 120);  // ~4 sigma
  auto p = tg::random_permutation(100, rng);
  std::sort(p.begin(), p.end());
  CHECK(p == iota(100));
}

TEST_CASE("a DataLoader without shuffle visits 0..N-1 in order with a partial last batch") {
  auto d = counting_dataset(10);
  tg::DataLoader<double> loader(d, 4);
  CHECK(loader.size() == 3);
  std::vector<std::size_t> sizes;
  CHECK(run_epoch(loader, &sizes) == iota(10));
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(run_epoch(loader) == iota(10));
}

TEST_CASE(
    "a shuffling DataLoader covers every example exactly once per epoch, in a new order each "
    "epoch") {
  auto d = counting_dataset(23);
  tg::DataLoader<double> loader(d, 5, /*shuffle=*/true, /*seed=*/42);
  CHECK(loader.size() == 5);
  std::set<std::vector<std::size_t>> orders;
  for (int epoch = 0; epoch < 4; ++epoch) {
    std::vector<std::size_t> sizes;
    auto seen = run_epoch(loader, &sizes);
    CHECK(sizes == std::vector<std::size_t>{5, 5, 5, 5, 3});
    CHECK(seen == loader.epoch_order(static_cast<std::size_t>(epoch)));
    orders.insert(seen);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == iota(23));
  }
  CHECK(orders.size() == 4);
  CHECK(*orders.begin() != iota(23));
}

TEST_CASE("the same seed gives the same batches and a different seed different ones") {
  auto d = counting_dataset(17);
  tg::DataLoader<double> a(d, 4, true, 9), b(d, 4, true, 9), c(d, 4, true, 10);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto oa = run_epoch(a);
    CHECK(oa == run_epoch(b));
    CHECK(oa != run_epoch(c));
  }
  // set_epoch replays an epoch: resuming a run gives the orders it would have had.
  tg::DataLoader<double> resumed(d, 4, true, 9);
  resumed.set_epoch(2);
  CHECK(run_epoch(resumed) == a.epoch_order(2));
  CHECK(resumed.next_epoch() == 3);
}

TEST_CASE("drop_last leaves out the partial batch and len follows PyTorch") {
  auto d = counting_dataset(10);
  tg::DataLoader<double> loader(d, 4, true, 1, /*drop_last=*/true);
  CHECK(loader.size() == 2);
  std::vector<std::size_t> sizes;
  const auto seen = run_epoch(loader, &sizes);
  CHECK(sizes == std::vector<std::size_t>{4, 4});
  const auto order = loader.epoch_order(0);
  CHECK(seen == std::vector<std::size_t>(order.begin(), order.begin() + 8));
  CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == 8);
  tg::DataLoader<double> big(d, 16, false, 0, true);
  CHECK(big.size() == 0);
  CHECK(run_epoch(big).empty());
  CHECK(tg::DataLoader<double>(d, 16).size() == 1);
  CHECK(tg::DataLoader<double>(d, 5, false, 0, true).size() == 2);
}

TEST_CASE("a DataLoader rejects batch_size 0 and an empty dataset") {
  auto d = counting_dataset(3);
  CHECK_THROWS_AS(tg::DataLoader<double>(d, 0), tg::ValueError);
  CHECK_THROWS_WITH(tg::DataLoader<double>(d, 0), Catch::Contains("batch_size"));
  tg::Dataset<double> empty(xt::xarray<double>(xt::zeros<double>({0, 2})));
  CHECK_THROWS_WITH(tg::DataLoader<double>(empty, 2), Catch::Contains("empty") && Catch::Contains("(0, 2)"));
}

TEST_CASE("a regression DataLoader batches targets row by row and reuses its buffer") {
  auto d = tg::sine_next_step<float>(7, 5, 3);
  tg::DataLoader<float> loader(d, 3, true, 5);
  const float* buffer = nullptr;
  std::size_t b = 0;
  for (const auto& batch : loader) {
    REQUIRE(batch.targets.shape() == tg::Shape({batch.size(), 1}));
    REQUIRE(batch.inputs.shape() == tg::Shape({batch.size(), 5, 1}));
    CHECK(batch.labels.empty());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const std::size_t i = batch.indices[r];
      CHECK(batch.targets(r, 0) == d.targets()(i, 0));
      for (std::size_t t = 0; t < 5; ++t) CHECK(batch.inputs(r, t, 0) == d.inputs()(i, t, 0));
    }
    if (b == 1) CHECK(batch.inputs.data() == buffer);  // same shape (3, 5, 1): no reallocation
    buffer = batch.inputs.data();
    ++b;
  }
  CHECK(b == 3);
}

TEST_CASE("two_spirals has n points per class on two spiral arms rotated by pi") {
  auto d = tg::two_spirals<double>(50, 0.0, 1);
  REQUIRE(d.inputs().shape() == tg::Shape({100, 2}));
  CHECK(std::count(d.labels().begin(), d.labels().end(), 0) == 50);
  CHECK(std::count(d.labels().begin(), d.labels().end(), 1) == 50);
  for (std::size_t i = 0; i < 50; ++i) {
    const double t = static_cast<double>(i + 1) / 50.0;
    CHECK(std::hypot(d.inputs()(i, 0), d.inputs()(i, 1)) == Approx(t));
    CHECK(d.inputs()(50 + i, 0) == Approx(-d.inputs()(i, 0)).margin(1e-15));
    CHECK(d.inputs()(50 + i, 1) == Approx(-d.inputs()(i, 1)).margin(1e-15));
  }
  auto noisy = tg::two_spirals<double>(50, 0.1, 1);
  CHECK(tgtest::max_abs_diff(noisy.inputs(), d.inputs()) > 0.05);
  CHECK(tgtest::max_abs_diff(noisy.inputs(), d.inputs()) < 0.6);
}

TEST_CASE("moons follows sklearn's make_moons geometry") {
  auto d = tg::moons<double>(9, 0.0, 0);
  REQUIRE(d.inputs().shape() == tg::Shape({9, 2}));
  CHECK(std::count(d.labels().begin(), d.labels().end(), 0) == 4);  // n_out = 9 // 2
  // sklearn.datasets.make_moons(9, shuffle=False, noise=0): outer linspace(0, pi, 4),
  // inner 1 - cos / 1 - sin - 0.5 over linspace(0, pi, 5).
  const double pi = 3.14159265358979323846;
  CHECK(d.inputs()(1, 0) == Approx(std::cos(pi / 3)));
  CHECK(d.inputs()(1, 1) == Approx(std::sin(pi / 3)));
  CHECK(d.inputs()(3, 0) == Approx(-1.0));
  CHECK(d.inputs()(4, 0) == Approx(0.0).margin(1e-15));
  CHECK(d.inputs()(4, 1) == Approx(0.5));
  CHECK(d.inputs()(6, 0) == Approx(1.0));
  CHECK(d.inputs()(6, 1) == Approx(-0.5));
  CHECK(d.inputs()(8, 0) == Approx(2.0));
  CHECK(d.labels()[8] == 1);
}

TEST_CASE("gaussian_blobs splits n over the centres like make_blobs and scatters by std") {
  auto d = tg::gaussian_blobs<double>(3001, 3, 4, 0.5, 11);
  REQUIRE(d.inputs().shape() == tg::Shape({3001, 4}));
  std::vector<double> sum(12, 0.0), sq(12, 0.0);
  std::vector<std::size_t> count(3, 0);
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto c = static_cast<std::size_t>(d.labels()[i]);
    ++count[c];
    for (std::size_t k = 0; k < 4; ++k) {
      sum[c * 4 + k] += d.inputs()(i, k);
      sq[c * 4 + k] += d.inputs()(i, k) * d.inputs()(i, k);
    }
  }
  CHECK(count == std::vector<std::size_t>{1001, 1000, 1000});
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t k = 0; k < 4; ++k) {
      const double n = static_cast<double>(count[c]);
      const double mean = sum[c * 4 + k] / n;
      CHECK(std::abs(mean) < 10.0);
      CHECK(std::sqrt(sq[c * 4 + k] / n - mean * mean) == Approx(0.5).epsilon(0.1));
    }
  }
}

TEST_CASE("adding_problem has exactly two markers, one per half, and the target is their sum") {
  for (std::size_t seq_len : {2, 7, 30}) {
    auto d = tg::adding_problem<float>(200, seq_len, 5);
    REQUIRE(d.inputs().shape() == tg::Shape({200, seq_len, 2}));
    REQUIRE(d.targets().shape() == tg::Shape({200, 1}));
    double mse_of_mean = 0;
    for (std::size_t s = 0; s < 200; ++s) {
      std::vector<std::size_t> marks;
      for (std::size_t t = 0; t < seq_len; ++t) {
        const float v = d.inputs()(s, t, 0), m = d.inputs()(s, t, 1);
        CHECK((v >= 0.0f && v <= 1.0f));
        CHECK((m == 0.0f || m == 1.0f));
        if (m == 1.0f) marks.push_back(t);
      }
      REQUIRE(marks.size() == 2);
      CHECK(marks[0] < seq_len / 2);
      CHECK(marks[1] >= seq_len / 2);
      CHECK(d.targets()(s, 0) == d.inputs()(s, marks[0], 0) + d.inputs()(s, marks[1], 0));
      mse_of_mean += std::pow(d.targets()(s, 0) - 1.0, 2) / 200.0;
    }
    CHECK(mse_of_mean == Approx(1.0 / 6.0).epsilon(0.25));  // predicting the mean: ~0.167
  }
  CHECK_THROWS_AS(tg::adding_problem<float>(10, 1, 0), tg::ValueError);
}

TEST_CASE("sine_next_step targets continue the sine of the inputs") {
  auto d = tg::sine_next_step<double>(20, 12, 2);
  REQUIRE(d.inputs().shape() == tg::Shape({20, 12, 1}));
  REQUIRE(d.targets().shape() == tg::Shape({20, 1}));
  for (std::size_t s = 0; s < 20; ++s) {
    // For a sine, x_{t+1} = 2 cos(omega) x_t - x_{t-1}: recover cos(omega) and extrapolate.
    const auto& x = d.inputs();
    const double c = (x(s, 2, 0) + x(s, 0, 0)) / (2 * x(s, 1, 0));
    CHECK(c == Approx(std::cos(std::acos(c))));
    CHECK((c >= std::cos(0.6) - 1e-9 && c <= std::cos(0.1) + 1e-9));
    CHECK(d.targets()(s, 0) == Approx(2 * c * x(s, 11, 0) - x(s, 10, 0)).margin(1e-9));
    for (std::size_t t = 0; t < 12; ++t) CHECK(std::abs(x(s, t, 0)) <= 1.0);
  }
}

TEST_CASE("parity labels are the XOR of 0/1 bits and roughly balanced") {
  auto d = tg::parity<float>(1000, 8, 4);
  REQUIRE(d.inputs().shape() == tg::Shape({1000, 8, 1}));
  std::size_t ones = 0;
  for (std::size_t s = 0; s < 1000; ++s) {
    int sum = 0;
    for (std::size_t t = 0; t < 8; ++t) {
      const float b = d.inputs()(s, t, 0);
      REQUIRE((b == 0.0f || b == 1.0f));
      sum += static_cast<int>(b);
    }
    CHECK(d.labels()[s] == sum % 2);
    ones += static_cast<std::size_t>(d.labels()[s]);
  }
  CHECK(ones > 430);  // Binomial(1000, 1/2): 4.4 sigma
  CHECK(ones < 570);
}

TEST_CASE("every generator is deterministic for a seed and differs between seeds") {
  auto same = [](const auto& a, const auto& b) { return a.inputs() == b.inputs(); };
  CHECK(same(tg::two_spirals<float>(20, 0.1, 3), tg::two_spirals<float>(20, 0.1, 3)));
  CHECK_FALSE(same(tg::two_spirals<float>(20, 0.1, 3), tg::two_spirals<float>(20, 0.1, 4)));
  CHECK(same(tg::moons<float>(20, 0.1, 3), tg::moons<float>(20, 0.1, 3)));
  CHECK_FALSE(same(tg::moons<float>(20, 0.1, 3), tg::moons<float>(20, 0.1, 4)));
  CHECK(same(tg::gaussian_blobs<float>(20, 2, 3, 1.0, 3), tg::gaussian_blobs<float>(20, 2, 3, 1.0, 3)));
  CHECK_FALSE(same(tg::gaussian_blobs<float>(20, 2, 3, 1.0, 3), tg::gaussian_blobs<float>(20, 2, 3, 1.0, 4)));
  CHECK(same(tg::adding_problem<float>(20, 6, 3), tg::adding_problem<float>(20, 6, 3)));
  CHECK_FALSE(same(tg::adding_problem<float>(20, 6, 3), tg::adding_problem<float>(20, 6, 4)));
  CHECK(same(tg::sine_next_step<float>(20, 6, 3), tg::sine_next_step<float>(20, 6, 3)));
  CHECK_FALSE(same(tg::sine_next_step<float>(20, 6, 3), tg::sine_next_step<float>(20, 6, 4)));
  CHECK(same(tg::parity<float>(20, 6, 3), tg::parity<float>(20, 6, 3)));
  CHECK_FALSE(same(tg::parity<float>(20, 6, 3), tg::parity<float>(20, 6, 4)));
  // float and double draw the same numbers.
  CHECK(tgtest::max_abs_diff(tg::moons<float>(30, 0.2, 5).inputs(), tg::moons<double>(30, 0.2, 5).inputs()) <
        1e-6);
}

TEST_CASE("generators reject empty sizes and negative noise with the argument's name") {
  CHECK_THROWS_WITH(tg::two_spirals<float>(0, 0.1, 0), Catch::Contains("n_per_class"));
  CHECK_THROWS_WITH(tg::moons<float>(10, -0.1, 0), Catch::Contains("noise"));
  CHECK_THROWS_AS(tg::gaussian_blobs<float>(10, 0, 2, 1.0, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::gaussian_blobs<float>(10, 2, 2, std::nan(""), 0), tg::ValueError);
  CHECK_THROWS_AS(tg::sine_next_step<float>(10, 0, 0), tg::ValueError);
  CHECK_THROWS_AS(tg::parity<float>(0, 3, 0), tg::ValueError);
}
