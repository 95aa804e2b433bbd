// What a safetensors load costs in memory, measured by counting every operator new of this
// program (a file of its own: the counting allocator replaces the global one). A load holds
// the tensors plus a bounded chunk, never the whole file; a hostile header costs at most its
// own size, never a JSON tree many times larger; a header length is checked against the file
// size before anything is read.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>

#include "expect_error.hpp"
#include "support.hpp"

namespace {

std::atomic<std::size_t> g_current{0}, g_peak{0};

// Each block carries its size in front, so delete can subtract it.
constexpr std::size_t kHeader = alignof(std::max_align_t);

void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n + kHeader);
  if (!p) return nullptr;
  *static_cast<std::size_t*>(p) = n;
  const std::size_t now = g_current += n;
  for (std::size_t peak = g_peak; now > peak && !g_peak.compare_exchange_weak(peak, now);) {
  }
  return static_cast<char*>(p) + kHeader;
}

void counted_free(void* q) {
  if (!q) return;
  void* p = static_cast<char*>(q) - kHeader;
  g_current -= *static_cast<std::size_t*>(p);
  std::free(p);
}

// Bytes allocated at the peak of f() beyond what was live when it started.
template <class F>
std::size_t peak_of(F&& f) {
  const std::size_t base = g_current;
  g_peak = base;
  f();
  return g_peak - base;
}

constexpr std::size_t kMiB = 1 << 20;

}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace tg = tapegrad;
namespace fs = std::filesystem;
using tgtest::expect_error;

namespace {

std::string le64(std::uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

// A file of `size` bytes starting with `head`, the rest a hole (no disk, reads as zeros).
void make_sparse(const std::string& path, const std::string& head, off_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()));
  REQUIRE(::ftruncate(fd, size) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("the allocation counter sees what a load allocates") {
  const std::size_t peak = peak_of([] { std::vector<char> v(3 * kMiB); });
  CHECK(peak >= 3 * kMiB);
  CHECK(peak < 4 * kMiB);
}

TEST_CASE("a header length beyond the file is refused before the file is read") {
  const auto dir = tgtest::scratch_dir("io_memory", "sparse");
  const std::string path = (dir / "big.safetensors").string();
  const off_t size = 256 * static_cast<off_t>(kMiB);
  make_sparse(path, le64(1ULL << 40), size);
  std::size_t peak = peak_of([&] {
    expect_error<tg::IoError>([&] { tg::load_safetensors<float>(path); },
                              {path, "header length 1099511627776"});
  });
  CHECK(peak < kMiB);
  // A length inside the limit but past the end of a (small) file: also refused unread.
  make_sparse(path, le64(90'000'000), 1000);
  peak = peak_of([&] {
    expect_error<tg::IoError>([&] { tg::load_safetensors<float>(path); },
                              {"header length 90000000", "992 bytes"});
  });
  CHECK(peak < kMiB);
  // A header of 50 MB of zeros in a 256 MiB file: the header is read (it is needed), the rest not.
  make_sparse(path, le64(50'000'000), size);
  peak = peak_of(
      [&] { expect_error<tg::IoError>([&] { tg::load_safetensors<float>(path); }, {"not valid JSON"}); });
  CHECK(peak < 50'000'000 + kMiB);
  fs::remove_all(dir);
}

TEST_CASE("a 12 MB header of nested arrays costs about its own size, not a JSON tree") {
  // A DOM of this header takes about 190 MB. Read as a stream, it is refused at the first '['
  // (the header must be an object) or, inside an unknown member that is skipped, after a
  // bounded number of tokens.
  std::string arrays = "[";
  for (int i = 0; i < 4'000'000; ++i) arrays += "[],";
  arrays += "[]]";
  const std::string top = tgtest::safetensors_bytes(arrays, "");
  const std::string in_entry = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + arrays + "}}", std::string(4, '\0'));
  const auto dir = tgtest::scratch_dir("io_memory", "arrays");
  const std::string path = (dir / "h.safetensors").string();
  for (const auto& item : {std::pair(top, "must be a JSON object; got array"),
                           std::pair(in_entry, "more than 1000000 tokens in 'w'")}) {
    const std::string& bytes = item.first;  // not a structured binding: clang 14's lambdas cannot capture one
    const char* const message = item.second;
    tg::write_file_atomic(path, bytes);
    INFO("header of " << bytes.size() << " bytes");
    // The header is read whole (it is needed); parsing it adds a few MB at most.
    std::size_t peak = peak_of([&] {
      expect_error<tg::IoError>([&] { tg::load_safetensors<float>(path); }, {path, message});
    });
    CHECK(peak < bytes.size() + 6 * kMiB);
    peak = peak_of([&] {
      expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(bytes); }, {message});
    });
    CHECK(peak < bytes.size() + 6 * kMiB);
  }
  fs::remove_all(dir);
}

TEST_CASE("loading a file holds the tensors and one chunk, not a copy of the file") {
  const auto dir = tgtest::scratch_dir("io_memory", "tensors");
  const std::string path = (dir / "t.safetensors").string();
  tg::TensorMap<float> m;
  m["a"] = tgtest::randn<float>({1024, 1024}, 1);  // 4 MiB
  m["b"] = tgtest::randn<float>({512, 1024}, 2);   // 2 MiB
  tg::save_safetensors(path, m);
  const std::size_t tensor_bytes = 6 * kMiB;
  const std::size_t as_float = peak_of([&] { CHECK(tg::load_safetensors<float>(path).tensors.size() == 2); });
  CHECK(as_float < tensor_bytes + 1536 * 1024);  // + the 1 MiB chunk and small change
  const std::size_t as_double =
      peak_of([&] { CHECK(tg::load_safetensors<double>(path).tensors.size() == 2); });
  CHECK(as_double < 2 * tensor_bytes + 1536 * 1024);
  const std::string bytes = tgtest::read_bytes(path);
  const std::size_t from_bytes = peak_of([&] { tg::load_safetensors_from_bytes<float>(bytes); });
  CHECK(from_bytes < tensor_bytes + 1536 * 1024);
  fs::remove_all(dir);
}
