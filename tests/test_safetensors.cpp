// safetensors: round trips, the on-disk layout checked independently, every kind of malformed
// file, and atomic replacement of an existing file.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

std::vector<std::string> dir_entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  }
  return s;
}

template <class T>
tg::TensorMap<T> sample_tensors() {
  tg::TensorMap<T> m;
  m["weight"] = tgtest::randn<T>({3, 4}, 1);
  m["bias"] = tgtest::randn<T>({4}, 2);
  m["scalar"] = xt::xarray<T>(T(2.5));  // 0-d
  m["empty"] = xt::xarray<T>::from_shape({0, 3});
  m["deep"] = tgtest::randn<T>({2, 1, 3, 1, 2}, 3);
  return m;
}

template <class T>
void check_same(const tg::TensorMap<T>& a, const tg::TensorMap<T>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, x] : a) {
    INFO("tensor " << name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).shape() == x.shape());
    CHECK(b.at(name) == x);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("save then load returns the same tensors and metadata", "", float, double) {
  const auto dir = tgtest::scratch_dir("safetensors", "roundtrip");
  const auto path = (dir / "m.safetensors").string();
  const auto tensors = sample_tensors<TestType>();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"step", "100"}};
  tg::save_safetensors(path, tensors, meta);
  const auto loaded = tg::load_safetensors<TestType>(path);
  check_same(tensors, loaded.tensors);
  CHECK(loaded.tensors.at("scalar").dimension() == 0);
  CHECK(loaded.metadata == meta);
  CHECK(dir_entries(dir) == std::vector<std::string>{"m.safetensors"});
  // No metadata, no tensors: still a valid file.
  tg::save_safetensors(path, tg::TensorMap<TestType>{});
  const auto none = tg::load_safetensors<TestType>(path);
  CHECK(none.tensors.empty());
  CHECK(none.metadata.empty());
  fs::remove_all(dir);
}

TEST_CASE("F64 files load as float and F32 files as double") {
  const auto d = sample_tensors<double>();
  const auto as_float = tg::load_safetensors_from_bytes<float>(tg::safetensors_to_bytes(d));
  CHECK(tgtest::max_abs_diff(as_float.tensors.at("weight"), d.at("weight")) < 1e-6);
  const auto f = sample_tensors<float>();
  const auto as_double = tg::load_safetensors_from_bytes<double>(tg::safetensors_to_bytes(f));
  CHECK(tgtest::max_abs_diff(as_double.tensors.at("deep"), f.at("deep")) == 0.0);
}

TEST_CASE("the written file has the safetensors layout, byte for byte") {
  tg::TensorMap<float> m;
  m["b"] = xt::xarray<float>{1.5f, -2.0f};
  m["a"] = xt::xarray<float>{{1.0f, 2.0f, 3.0f}};
  const std::string bytes = tg::safetensors_to_bytes(m, {{"k", "v"}});
  // 8-byte little-endian header length.
  REQUIRE(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CHECK(n % 8 == 0);  // padded like the reference implementation
  REQUIRE(8 + n <= bytes.size());
  const std::string header = bytes.substr(8, n);
  CHECK(header.find_last_not_of(' ') + 1 + 7 >= header.size());  // at most 7 spaces of padding
  const auto j = nlohmann::json::parse(header);
  CHECK(j["__metadata__"] == nlohmann::json({{"k", "v"}}));
  // Sorted-name order, contiguous from 0: a (3 floats) then b (2 floats).
  CHECK(j["a"]["dtype"] == "F32");
  CHECK(j["a"]["shape"] == nlohmann::json({1, 3}));
  CHECK(j["a"]["data_offsets"] == nlohmann::json({0, 12}));
  CHECK(j["b"]["shape"] == nlohmann::json({2}));
  CHECK(j["b"]["data_offsets"] == nlohmann::json({12, 20}));
  CHECK(bytes.size() == 8 + n + 20);
  CHECK(bytes.substr(8 + n) == f32_bytes({1.0f, 2.0f, 3.0f, 1.5f, -2.0f}));
  const auto d = tg::safetensors_to_bytes(tg::TensorMap<double>{{"x", xt::xarray<double>{1.0}}});
  CHECK(d.substr(d.size() - 8) == std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8));  // 1.0 LE
}

TEST_CASE("a file in the reference implementation's own layout loads") {
  // The shape of safetensors' test_simple.py example (metadata first, fields in the order
  // dtype/shape/data_offsets, space padding), with F32 data 1, 2, 3, 4.
  const std::string file = tgtest::safetensors_bytes(
      R"({"__metadata__":{"framework":"pt"},"test1":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
      f32_bytes({1, 2, 3, 4}));
  const auto r = tg::load_safetensors_from_bytes<double>(file);
  CHECK(r.tensors.at("test1") == xt::xarray<double>{{1, 2}, {3, 4}});
  CHECK(r.metadata.at("framework") == "pt");
  const std::string i32 = tgtest::safetensors_bytes(
      R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", std::string(16, '\0'));
  CHECK_THROWS_WITH(tg::load_safetensors_from_bytes<float>(i32),
                    Contains("'test'") && Contains("dtype I32 is not supported"));
}

TEST_CASE("a file truncated at any byte is an IoError, never a crash or a partial result") {
  tg::TensorMap<float> m;
  m["w"] = xt::xarray<float>{{1, 2}, {3, 4}};
  m["s"] = xt::xarray<float>(7.0f);
  const std::string bytes = tg::safetensors_to_bytes(m, {{"a", "b"}});
  REQUIRE_NOTHROW(tg::load_safetensors_from_bytes<float>(bytes));
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    INFO("truncated to " << len << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(tg::load_safetensors_from_bytes<float>(bytes.substr(0, len)), tg::IoError);
  }
  CHECK_THROWS_WITH(tg::load_safetensors_from_bytes<float>(bytes.substr(0, 5)), Contains("5 bytes"));
}

TEST_CASE("a header length beyond the file or the 100 MB cap is an IoError with the numbers") {
  std::string bytes = tgtest::safetensors_bytes(R"({})", "");
  CHECK_NOTHROW(tg::load_safetensors_from_bytes<float>(bytes));
  bytes[0] = static_cast<char>(200);
  CHECK_THROWS_WITH(tg::load_safetensors_from_bytes<float>(bytes),
                    Contains("header length 200") && Contains("8 bytes after the length field"));
  std::string huge(16, ' ');
  const std::uint64_t n = 1ULL << 40;
  for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  CHECK_THROWS_WITH(tg::load_safetensors_from_bytes<float>(huge), Contains("exceeds the limit"));
}

TEST_CASE("inconsistent data offsets are IoErrors naming the tensors and offsets") {
  auto load = [](const std::string& header, std::size_t data_len) {
    return tg::load_safetensors_from_bytes<float>(
        tgtest::safetensors_bytes(header, std::string(data_len, '\0')));
  };
  SECTION("overlap") {
    CHECK_THROWS_AS(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                            "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         12),
                    tg::IoError);
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                              "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
                      Contains("'a' [0, 8) and 'b' [4, 12) overlap"));
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                              "b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           8),
                      Contains("overlap"));
  }
  SECTION("out of range") {
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12),
                      Contains("'a'") && Contains("[8, 16]") && Contains("data section of 12 bytes"));
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 12),
                      Contains("'a'") && Contains("begin > end"));
  }
  SECTION("size does not match the shape") {
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F64","shape":[2,3],"data_offsets":[0,24]}})", 24),
                      Contains("'a'") && Contains("span 24 bytes") && Contains("6 x 8 = 48 bytes"));
    CHECK_THROWS_WITH(
        load(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
        Contains("too many elements"));
    std::string many = "[1";
    for (int i = 0; i < 64; ++i) many += ",1";
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":)" + many + R"(],"data_offsets":[0,4]}})", 4),
                      Contains("65 dims"));
    // A zero dim makes the tensor empty, but the other dims must still be indexable.
    CHECK(load(R"({"a":{"dtype":"F32","shape":[0,1048576,1048576],"data_offsets":[0,0]}})", 0)
              .tensors.at("a")
              .size() == 0);
    CHECK_THROWS_WITH(
        load(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0),
        Contains("too many elements"));
  }
  SECTION("unaccounted bytes") {
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                      Contains("bytes [0, 4)") && Contains("belong to no tensor"));
    CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
                      Contains("bytes [4, 8) at the end"));
  }
}

TEST_CASE("malformed header entries are IoErrors naming the tensor") {
  auto load = [](const std::string& header, std::size_t data_len = 4) {
    return tg::load_safetensors_from_bytes<float>(
        tgtest::safetensors_bytes(header, std::string(data_len, '\0')));
  };
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})"),
                    Contains("'a'") && Contains("unknown dtype F31"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})"),
                    Contains("unknown dtype 7"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})"),
                    Contains("BF16 is not supported"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})"),
                    Contains("'a': shape[0] must be a non-negative integer; got -1"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})"),
                    Contains("shape[0]"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})"),
                    Contains("shape must be an array"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})"),
                    Contains("data_offsets must be [begin, end]"));
  CHECK_THROWS_WITH(load(R"({"a":{"dtype":"F32","shape":[1]}})"), Contains("no \"data_offsets\""));
  CHECK_THROWS_WITH(load(R"({"a":[1]})"), Contains("'a': header entry must be an object"));
  CHECK_THROWS_WITH(load(R"([1, 2])"), Contains("must be a JSON object"));
  CHECK_THROWS_WITH(load(R"({"a":)"), Contains("not valid JSON"));
  CHECK_THROWS_WITH(load(R"({"__metadata__":{"k":1}})", 0), Contains("__metadata__['k'] must be a string"));
  CHECK_THROWS_WITH(load(R"({"__metadata__":[]})", 0), Contains("__metadata__ must be an object"));
  CHECK_THROWS_AS(tg::safetensors_to_bytes(tg::TensorMap<float>{{"__metadata__", xt::xarray<float>{1}}}),
                  tg::ValueError);
}

TEST_CASE("random corruption of a valid file either loads or throws an IoError") {
  const std::string good = tg::safetensors_to_bytes(sample_tensors<float>(), {{"x", "y"}});
  std::mt19937_64 rng(5);
  int loaded = 0;
  for (int k = 0; k < 3000; ++k) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      // Mostly the length field and the header, where the structure lives.
      const std::size_t limit = (rng() % 4 == 0) ? bytes.size() : std::min<std::size_t>(bytes.size(), 300);
      bytes[rng() % limit] = static_cast<char>(rng() & 0xFF);
    }
    try {
      tg::load_safetensors_from_bytes<float>(bytes);
      ++loaded;
    } catch (const tg::IoError&) {
    }
  }
  CHECK(loaded > 0);
}

TEST_CASE("an interrupted write leaves the previous file intact and no temporary file behind") {
  const auto dir = tgtest::scratch_dir("safetensors", "atomic");
  const auto path = (dir / "ckpt.safetensors").string();
  const auto before = sample_tensors<float>();
  tg::save_safetensors(path, before, {{"version", "1"}});
  const std::string old_bytes = tgtest::read_bytes(path);

  tg::TensorMap<float> after;
  after["weight"] = xt::ones<float>({3, 4});
  const std::string new_bytes = tg::safetensors_to_bytes(after);
  for (std::size_t fail_at : {std::size_t(0), std::size_t(7), new_bytes.size() / 2, new_bytes.size() - 1}) {
    INFO("failing after " << fail_at << " bytes");
    CHECK_THROWS_AS(tg::write_file_atomic(path, new_bytes, fail_at), tg::IoError);
    CHECK_THROWS_WITH(tg::write_file_atomic(path, new_bytes, fail_at), Contains("simulated failure"));
    CHECK(tgtest::read_bytes(path) == old_bytes);
    CHECK(dir_entries(dir) == std::vector<std::string>{"ckpt.safetensors"});
    const auto still = tg::load_safetensors<float>(path);
    check_same(before, still.tensors);
    CHECK(still.metadata.at("version") == "1");
  }
  // Without a failure the new contents replace the old ones.
  tg::write_file_atomic(path, new_bytes);
  CHECK(tgtest::read_bytes(path) == new_bytes);
  CHECK(dir_entries(dir) == std::vector<std::string>{"ckpt.safetensors"});
  fs::remove_all(dir);
}

TEST_CASE("unwritable or missing paths are IoErrors naming the path") {
  CHECK_THROWS_AS(tg::save_safetensors("/nonexistent-dir/x.safetensors", sample_tensors<float>()),
                  tg::IoError);
  CHECK_THROWS_WITH(tg::save_safetensors("/nonexistent-dir/x.safetensors", sample_tensors<float>()),
                    Contains("/nonexistent-dir/x.safetensors"));
  CHECK_THROWS_WITH(tg::load_safetensors<float>("/nonexistent-dir/x.safetensors"),
                    Contains("/nonexistent-dir/x.safetensors") && Contains("cannot open"));
  const auto dir = tgtest::scratch_dir("safetensors", "errors");
  const auto path = (dir / "bad.safetensors").string();
  tg::write_file_atomic(path, "abc");
  CHECK_THROWS_WITH(tg::load_safetensors<float>(path), Contains(path) && Contains("3 bytes"));
  fs::remove_all(dir);
}

TEST_CASE("a deeply nested header is an IoError, not a stack overflow") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH(
      tg::load_safetensors_from_bytes<float>(tgtest::safetensors_bytes("{\"a\":" + deep + "}", "")),
      Contains("'a': header entry must be an object; got an array of 1 elements"));
  CHECK_THROWS_WITH(tg::load_safetensors_from_bytes<float>(tgtest::safetensors_bytes(deep, "")),
                    Contains("must be a JSON object"));
}
