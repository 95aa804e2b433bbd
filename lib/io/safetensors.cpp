#include "tapegrad/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "file.hpp"
#include "safetensors_header.hpp"
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/shape.hpp"

namespace tapegrad {

namespace {

using json = nlohmann::json;

template <class T>
constexpr const char* dtype_name();
template <>
constexpr const char* dtype_name<float>() {
  return "F32";
}
template <>
constexpr const char* dtype_name<double>() {
  return "F64";
}

// Little-endian (de)serialisation by shifts: the same bytes on any host.
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint64_t get_le(const unsigned char* p, int nbytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < nbytes; ++i) v |= std::uint64_t(p[i]) << (8 * i);
  return v;
}

template <class T>
void put_values(std::string& out, const T* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (sizeof(T) == 4) {
      std::uint32_t bits;
      std::memcpy(&bits, &data[i], 4);
      for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((bits >> (8 * b)) & 0xFF));
    } else {
      std::uint64_t bits;
      std::memcpy(&bits, &data[i], 8);
      for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((bits >> (8 * b)) & 0xFF));
    }
  }
}

template <class T>
void get_values(const unsigned char* p, std::size_t itemsize, std::size_t n, T* out) {
  for (std::size_t i = 0; i < n; ++i, p += itemsize) {
    if (itemsize == 4) {
      const auto bits = static_cast<std::uint32_t>(get_le(p, 4));
      float f;
      std::memcpy(&f, &bits, 4);
      out[i] = static_cast<T>(f);
    } else {
      const std::uint64_t bits = get_le(p, 8);
      double d;
      std::memcpy(&d, &bits, 8);
      out[i] = static_cast<T>(d);
    }
  }
}

// Bytes of the data section converted per chunk, so a load holds the tensors and at most
// this much more (never the whole file).
constexpr std::size_t kChunkBytes = 1 << 20;

// `s` with bytes outside printable ASCII as \xHH, for messages about strings that are not text.
std::string escaped(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
    }
  }
  return out;
}

// The offset of the first byte of `s` that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or npos. JSON text must be UTF-8.
std::size_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned char b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += len;
  }
  return std::string::npos;
}

// ValueError unless `s` is UTF-8: the header is JSON, which cannot hold other bytes.
void check_utf8(const std::string& s, const std::string& what) {
  const std::size_t at = invalid_utf8_at(s);
  if (at == std::string::npos) return;
  const auto byte = static_cast<unsigned char>(s[at]);
  throw ValueError("save_safetensors: " + what + " '" + escaped(s) + "' is not valid UTF-8 (byte " +
                   escaped(std::string(1, static_cast<char>(byte))).replace(0, 2, "0x") + " at offset " +
                   std::to_string(at) + "); safetensors headers are JSON text");
}

// A safetensors file from its size and a reader of its next bytes (`read(buf, n)` fills n
// bytes or throws): the length field, then the header, validated before any tensor is
// allocated, then the data section chunk by chunk.
template <class T, class Read>
SafetensorsData<T> load_from(std::uint64_t size, Read&& read, const std::string& where) {
  if (size < 8) {
    throw IoError(where + "the file has " + std::to_string(size) +
                  " bytes, fewer than the 8-byte header length");
  }
  unsigned char len[8];
  read(reinterpret_cast<char*>(len), 8);
  const std::uint64_t n = get_le(len, 8);
  if (n > kSafetensorsMaxHeader) {
    throw IoError(where + "header length " + std::to_string(n) + " exceeds the limit of " +
                  std::to_string(kSafetensorsMaxHeader) + " bytes");
  }
  if (n > size - 8) {
    throw IoError(where + "header length " + std::to_string(n) + " exceeds the " + std::to_string(size - 8) +
                  " bytes after the length field (file size " + std::to_string(size) + ")");
  }
  std::string text(static_cast<std::size_t>(n), '\0');
  read(text.data(), text.size());
  detail::SafetensorsHeader header =
      detail::parse_safetensors_header(text.data(), text.size(), size - 8 - n, where);
  std::string().swap(text);
  SafetensorsData<T> result;
  result.metadata = std::move(header.metadata);
  std::vector<unsigned char> chunk;
  for (const detail::SafetensorsEntry& e : header.entries) {  // in file order, contiguous
    xt::xarray<T> a = xt::xarray<T>::from_shape(e.shape);
    for (std::size_t done = 0; done < a.size();) {
      const std::size_t count = std::min(a.size() - done, kChunkBytes / e.itemsize);
      chunk.resize(count * e.itemsize);
      read(reinterpret_cast<char*>(chunk.data()), chunk.size());
      get_values(chunk.data(), e.itemsize, count, a.data() + done);
      done += count;
    }
    result.tensors.emplace(e.name, std::move(a));
  }
  return result;
}

std::string sys_error(const std::string& what, const std::string& path) {
  return "write_file_atomic: " + what + " \"" + path + "\": " + std::strerror(errno);
}

// A seed for temporary file names. std::random_device may throw where the system has no
// entropy source; the names need to be unlikely to collide, not secret.
std::uint64_t temp_name_seed() {
  const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  try {
    std::random_device rd;
    return (std::uint64_t(rd()) << 32) ^ now;
  } catch (const std::exception&) {
    return now;
  }
}

// The temporary file: closed and removed on destruction unless it was renamed into place.
struct TempFile {
  std::string path;
  int fd = -1;
  bool renamed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes, std::size_t fail_after_bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::optional<mode_t> mode = detail::check_output_path(path, "write_file_atomic");
  TempFile tmp;
  std::mt19937_64 rng(temp_name_seed());
  for (int attempt = 0; tmp.fd < 0; ++attempt) {
    tmp.path = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng() >> 32);
    tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (tmp.fd < 0 && (errno != EEXIST || attempt >= 100)) {
      const std::string msg = sys_error("cannot create a temporary file for", path);
      tmp.path.clear();  // nothing of ours to remove
      throw IoError(msg);
    }
  }
  const std::size_t to_write = std::min(bytes.size(), fail_after_bytes);
  std::size_t done = 0;
  while (done < to_write) {
    const ssize_t w = ::write(tmp.fd, bytes.data() + done, to_write - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw IoError(sys_error("cannot write", tmp.path));
    done += static_cast<std::size_t>(w);
  }
  if (to_write < bytes.size()) {
    throw IoError("write_file_atomic: simulated failure after " + std::to_string(to_write) + " of " +
                  std::to_string(bytes.size()) + " bytes of \"" + path + "\" (test hook)");
  }
  // The replacement keeps the permissions of the file it replaces (a 0600 checkpoint stays
  // private); a new file gets the usual 0666 & ~umask.
  if (mode && ::fchmod(tmp.fd, *mode) != 0) throw IoError(sys_error("cannot set the mode of", tmp.path));
  if (::fsync(tmp.fd) != 0) throw IoError(sys_error("cannot fsync", tmp.path));
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) throw IoError(sys_error("cannot close", tmp.path));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    throw IoError(sys_error("cannot rename " + tmp.path + " to", path));
  }
  tmp.renamed = true;
  // Make the rename durable. Best effort: some file systems cannot fsync a directory, and the
  // new file is complete and in place either way.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

template <class T>
std::string safetensors_to_bytes(const TensorMap<T>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, a] : tensors) {  // std::map: sorted by name
    if (name == "__metadata__") {
      throw ValueError("save_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    }
    check_utf8(name, "tensor name");
    const std::uint64_t nbytes = a.size() * sizeof(T);
    header[name] = {{"dtype", dtype_name<T>()},
                    {"shape", std::vector<std::size_t>(a.shape().begin(), a.shape().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  for (const auto& [key, value] : metadata) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value of '" + escaped(key) + "':");
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // checked above; nlohmann's errors are not ours to throw
    throw ValueError(std::string("save_safetensors: cannot write the header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  put_u64(out, text.size());
  out += text;
  for (const auto& [name, a] : tensors) put_values(out, a.data(), a.size());
  return out;
}

template <class T>
void save_safetensors(const std::string& path, const TensorMap<T>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_to_bytes(tensors, metadata));
}

template <class T>
SafetensorsData<T> load_safetensors(const std::string& path) {
  detail::InputFile file(path, "load_safetensors");
  return load_from<T>(
      file.size(), [&](char* out, std::size_t n) { file.read_exact(out, n); },
      "load_safetensors: " + path + ": ");
}

template <class T>
SafetensorsData<T> load_safetensors_from_bytes(const std::string& bytes) {
  std::size_t pos = 0;
  return load_from<T>(
      bytes.size(),
      [&](char* out, std::size_t n) {
        std::memcpy(out, bytes.data() + pos, n);  // load_from reads within the size it is given
        pos += n;
      },
      "load_safetensors: ");
}

#define TAPEGRAD_INSTANTIATE(T)                                                            \
  template std::string safetensors_to_bytes<T>(const TensorMap<T>&,                        \
                                               const std::map<std::string, std::string>&); \
  template void save_safetensors<T>(const std::string&, const TensorMap<T>&,               \
                                    const std::map<std::string, std::string>&);            \
  template SafetensorsData<T> load_safetensors<T>(const std::string&);                     \
  template SafetensorsData<T> load_safetensors_from_bytes<T>(const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
