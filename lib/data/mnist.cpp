#include "tapegrad/data/mnist.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "../io/file.hpp"
#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

using json = nlohmann::json;

// A streaming (SAX) reader for {"data": [v0, v1, ...], ...}: numbers go straight into a
// vector, without building a JSON tree of ~800,000 nodes, and parsing can stop after the
// first `limit` values. Any other member's value is skipped whatever its nesting.
class DigitsSax : public nlohmann::json_sax<json> {
 public:
  explicit DigitsSax(std::size_t limit) : limit_(limit) {}

  std::vector<double> values;
  std::string error;      // set when parsing stopped on a problem
  bool stopped = false;   // stopped early because `limit` values were read
  bool saw_data = false;  // the "data" array was opened

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool string(string_t&) override { return scalar("a string"); }
  bool binary(binary_t&) override { return scalar("binary data"); }
  bool number_integer(number_integer_t v) override { return number(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return number(v); }

  bool start_object(std::size_t) override {
    if (in_data()) return fail("data[" + std::to_string(values.size()) + "] is an object, expected a number");
    if (depth_ == 1 && key_is_data_) return fail("\"data\" is an object, expected an array");
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      if (k == "data" && saw_data) return fail("\"data\" appears twice");
      key_is_data_ = k == "data";
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return fail("the top level is an array, expected an object {\"data\": [...]}");
    if (in_data()) return fail("data[" + std::to_string(values.size()) + "] is an array, expected a number");
    if (depth_ == 1 && key_is_data_) saw_data = true;
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 1 && key_is_data_) key_is_data_ = false;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail(std::string("malformed JSON: ") + e.what());
  }

 private:
  // Directly inside the top-level "data" array.
  bool in_data() const { return depth_ == 2 && key_is_data_ && saw_data; }
  bool fail(std::string msg) {
    error = std::move(msg);
    return false;
  }
  bool scalar(const char* what) {
    if (depth_ == 0) return fail(std::string("the top level is ") + what + ", expected an object");
    if (depth_ == 1 && key_is_data_) return fail(std::string("\"data\" is ") + what + ", expected an array");
    if (in_data())
      return fail("data[" + std::to_string(values.size()) + "] is " + what + ", expected a number");
    return true;
  }
  bool number(double v) {
    if (!in_data()) return scalar("a number");
    if (!(v >= 0.0 && v <= 1.0)) {
      std::ostringstream os;
      os << "data[" << values.size() << "] = " << v << " is outside [0, 1]";
      return fail(os.str());
    }
    values.push_back(v);
    if (values.size() == limit_) {
      stopped = true;
      return false;
    }
    return true;
  }

  std::size_t limit_;
  int depth_ = 0;
  bool key_is_data_ = false;
};

}  // namespace

std::string default_mnist_dir() {
  if (const char* env = std::getenv("TAPEGRAD_DATA_DIR"); env != nullptr && *env != '\0') {
    return (std::filesystem::path(env) / "mnist").string();
  }
  // This file is <repo>/lib/data/mnist.cpp; CMake compiles it by absolute path.
  namespace fs = std::filesystem;
  const fs::path self(__FILE__);
  if (self.is_absolute()) {
    const fs::path repo = self.parent_path().parent_path().parent_path();
    std::error_code ec;
    if (fs::is_regular_file(repo / "scripts" / "fetch-mnist", ec)) {
      return (repo / ".cache" / "mnist").string();
    }
  }
  throw IoError(
      "default_mnist_dir: TAPEGRAD_DATA_DIR is not set and the tapegrad source tree this library "
      "was built from is not available; set TAPEGRAD_DATA_DIR (the data is read from "
      "$TAPEGRAD_DATA_DIR/mnist) or pass the directory to load_mnist explicitly");
}

template <class T>
xt::xarray<T> parse_mnist_digits(const std::string& text, std::size_t max_images, const std::string& source) {
  checked_size("parse_mnist_digits: max_images", max_images);
  // A limit of more values than fit in memory is no limit (0): max_images * 784 may overflow.
  const std::size_t limit =
      max_images == 0 || max_images > kMaxSize / kMnistPixels ? 0 : max_images * kMnistPixels;
  DigitsSax sax(limit);
  const std::string where = "parse_mnist_digits: " + source + ": ";
  try {
    json::sax_parse(text, &sax);
  } catch (const json::exception& e) {  // SAX reports errors through DigitsSax; a backstop
    throw IoError(where + "malformed JSON: " + e.what());
  }
  if (!sax.error.empty()) throw IoError(where + sax.error);
  if (!sax.saw_data) throw IoError(where + "no \"data\" array in the top-level object");
  const std::size_t n = sax.values.size();
  if (n == 0 || n % kMnistPixels != 0) {
    throw IoError(where + "\"data\" has " + std::to_string(n) +
                  " values, which is not a positive multiple of 784 (28 x 28 pixels per image)");
  }
  xt::xarray<T> images = xt::xarray<T>::from_shape({n / kMnistPixels, kMnistPixels});
  for (std::size_t i = 0; i < n; ++i) images.data()[i] = static_cast<T>(sax.values[i]);
  return images;
}

template <class T>
Dataset<T> load_mnist(const std::string& dir, std::size_t max_per_class) {
  std::vector<xt::xarray<T>> parts;
  std::size_t total = 0;
  for (std::size_t d = 0; d < kMnistClasses; ++d) {
    const std::string path = (std::filesystem::path(dir) / (std::to_string(d) + ".json")).string();
    const std::string text = detail::InputFile(path, "load_mnist").read_rest();
    parts.push_back(parse_mnist_digits<T>(text, max_per_class, path));
    total += parts.back().shape()[0];
  }
  xt::xarray<T> x = xt::xarray<T>::from_shape({total, kMnistPixels});
  std::vector<std::int64_t> y;
  y.reserve(total);
  T* out = x.data();
  for (std::size_t d = 0; d < kMnistClasses; ++d) {
    out = std::copy(parts[d].data(), parts[d].data() + parts[d].size(), out);
    y.insert(y.end(), parts[d].shape()[0], static_cast<std::int64_t>(d));
  }
  return Dataset<T>(std::move(x), std::move(y));
}

template Dataset<float> load_mnist<float>(const std::string&, std::size_t);
template Dataset<double> load_mnist<double>(const std::string&, std::size_t);
template xt::xarray<float> parse_mnist_digits<float>(const std::string&, std::size_t, const std::string&);
template xt::xarray<double> parse_mnist_digits<double>(const std::string&, std::size_t, const std::string&);

}  // namespace tapegrad
