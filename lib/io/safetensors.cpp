#include "tapegrad/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

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

// A sanity bound on a tensor's rank, so a hostile header cannot make us build huge shapes.
constexpr std::size_t kMaxRank = 64;

// One validated header entry.
struct Entry {
  std::string name;
  std::size_t itemsize = 0;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// A short description of a JSON value for an error message: scalars as JSON text (cut at 60
// characters), containers by kind and size (a hostile header may nest them very deeply, and
// dump() recurses).
std::string describe(const json& v) {
  if (v.is_array()) return "an array of " + std::to_string(v.size()) + " elements";
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " members";
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// A non-negative JSON integer, else IoError "<what> must be a non-negative integer; got ...".
std::uint64_t get_uint(const json& v, const std::string& what) {
  if (!v.is_number_unsigned()) {
    throw IoError(what + " must be a non-negative integer; got " + describe(v));
  }
  return v.get<std::uint64_t>();
}

Entry parse_entry(const std::string& where, const std::string& name, const json& info) {
  const std::string t = where + "tensor " + quoted(name);
  if (!info.is_object()) throw IoError(t + ": header entry must be an object; got " + describe(info));
  for (const char* k : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(k)) throw IoError(t + ": header entry has no \"" + k + "\"");
  }
  Entry e;
  e.name = name;
  const json& dt = info["dtype"];
  const std::string dtype = dt.is_string() ? dt.get<std::string>() : describe(dt);
  if (dtype == "F32") {
    e.itemsize = 4;
  } else if (dtype == "F64") {
    e.itemsize = 8;
  } else {
    static const char* known[] = {"BOOL", "U8",   "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16",
                                  "F16",  "BF16", "I32", "U32",     "I64",     "U64"};
    const bool is_known =
        dt.is_string() && std::find(std::begin(known), std::end(known), dtype) != std::end(known);
    throw IoError(t + ": " +
                  (is_known ? "dtype " + dtype + " is not supported" : "unknown dtype " + dtype) +
                  " (tapegrad reads F32 and F64)");
  }
  const json& shape = info["shape"];
  if (!shape.is_array()) throw IoError(t + ": shape must be an array; got " + describe(shape));
  if (shape.size() > kMaxRank) {
    throw IoError(t + ": shape has " + std::to_string(shape.size()) + " dims, more than " +
                  std::to_string(kMaxRank));
  }
  // The product of the non-zero dims must fit in a signed 64-bit index (xtensor's strides are
  // signed), even when a zero dim makes the tensor empty.
  constexpr auto kMaxIndex = static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max());
  std::uint64_t nonzero_product = 1;
  bool has_zero = false, too_big = false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t d = get_uint(shape[i], t + ": shape[" + std::to_string(i) + "]");
    e.shape.push_back(static_cast<std::size_t>(d));
    if (d == 0) {
      has_zero = true;
    } else if (nonzero_product > kMaxIndex / d) {
      too_big = true;
    } else {
      nonzero_product *= d;
    }
  }
  if (too_big || nonzero_product > kMaxIndex / e.itemsize) {
    throw IoError(t + ": shape " + shape_str(e.shape) + " has too many elements");
  }
  const std::uint64_t numel = has_zero ? 0 : nonzero_product;
  const json& off = info["data_offsets"];
  if (!off.is_array() || off.size() != 2) {
    throw IoError(t + ": data_offsets must be [begin, end]; got " + describe(off));
  }
  e.begin = get_uint(off[0], t + ": data_offsets[0]");
  e.end = get_uint(off[1], t + ": data_offsets[1]");
  if (e.begin > e.end) {
    throw IoError(t + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] has begin > end");
  }
  const std::uint64_t nbytes = numel * e.itemsize;
  if (e.end - e.begin != nbytes) {
    throw IoError(t + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] span " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                  shape_str(e.shape) + " of " + dtype + " needs " + std::to_string(numel) + " x " +
                  std::to_string(e.itemsize) + " = " + std::to_string(nbytes) + " bytes");
  }
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& where, const json& m) {
  if (!m.is_object()) throw IoError(where + "__metadata__ must be an object; got " + describe(m));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) {
      throw IoError(where + "__metadata__[" + quoted(k) + "] must be a string; got " + describe(v));
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

template <class T>
SafetensorsData<T> parse(const std::string& bytes, const std::string& where) {
  const std::uint64_t size = bytes.size();
  if (size < 8) {
    throw IoError(where + "the file has " + std::to_string(size) +
                  " bytes, fewer than the 8-byte header length");
  }
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::uint64_t n = get_le(raw, 8);
  if (n > kSafetensorsMaxHeader) {
    throw IoError(where + "header length " + std::to_string(n) + " exceeds the limit of " +
                  std::to_string(kSafetensorsMaxHeader) + " bytes");
  }
  if (n > size - 8) {
    throw IoError(where + "header length " + std::to_string(n) + " exceeds the " +
                  std::to_string(size - 8) + " bytes after the length field (file size " +
                  std::to_string(size) + ")");
  }
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const json::exception& e) {
    throw IoError(where + "the header is not valid JSON: " + e.what());
  }
  if (!header.is_object())
    throw IoError(where + "the header must be a JSON object; got " +
                  std::string(header.type_name()));
  const std::uint64_t data_len = size - 8 - n;
  SafetensorsData<T> result;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = parse_metadata(where, info);
      continue;
    }
    entries.push_back(parse_entry(where, name, info));
    const Entry& e = entries.back();
    if (e.end > data_len) {
      throw IoError(where + "tensor " + quoted(e.name) + ": data_offsets [" +
                    std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] end past the data section of " + std::to_string(data_len) + " bytes");
    }
  }
  // Sorted by position, the tensors must tile the data section exactly: each starts where the
  // previous one ended (earlier = overlap, later = a gap of unaccounted bytes), and the last one
  // ends at the end of the data.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < pos) {
      throw IoError(where + "tensors " + quoted(prev->name) + " [" + std::to_string(prev->begin) +
                    ", " + std::to_string(prev->end) + ") and " + quoted(e.name) + " [" +
                    std::to_string(e.begin) + ", " + std::to_string(e.end) + ") overlap");
    }
    if (e.begin > pos) {
      throw IoError(where + "bytes [" + std::to_string(pos) + ", " + std::to_string(e.begin) +
                    ") of the data section (before tensor " + quoted(e.name) +
                    ") belong to no tensor");
    }
    pos = e.end;
    prev = &e;
  }
  if (pos != data_len) {
    throw IoError(where + "bytes [" + std::to_string(pos) + ", " + std::to_string(data_len) +
                  ") at the end of the data section belong to no tensor");
  }
  const unsigned char* data = raw + 8 + n;
  for (const Entry& e : entries) {
    xt::xarray<T> a = xt::xarray<T>::from_shape(e.shape);
    get_values(data + e.begin, e.itemsize, a.size(), a.data());
    result.tensors.emplace(e.name, std::move(a));
  }
  return result;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError("load_safetensors: cannot open \"" + path + "\": " + std::strerror(errno));
  }
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) throw IoError("load_safetensors: reading \"" + path + "\" failed");
  return os.str();
}

std::string sys_error(const std::string& what, const std::string& path) {
  return "write_file_atomic: " + what + " \"" + path + "\": " + std::strerror(errno);
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

void write_file_atomic(const std::string& path, const std::string& bytes,
                       std::size_t fail_after_bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  TempFile tmp;
  std::random_device rd;
  for (int attempt = 0; tmp.fd < 0; ++attempt) {
    tmp.path = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
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
    throw IoError("write_file_atomic: simulated failure after " + std::to_string(to_write) +
                  " of " + std::to_string(bytes.size()) + " bytes of \"" + path + "\" (test hook)");
  }
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
    const std::uint64_t nbytes = a.size() * sizeof(T);
    header[name] = {{"dtype", dtype_name<T>()},
                    {"shape", std::vector<std::size_t>(a.shape().begin(), a.shape().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
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
  return parse<T>(read_whole_file(path), "load_safetensors: " + path + ": ");
}

template <class T>
SafetensorsData<T> load_safetensors_from_bytes(const std::string& bytes) {
  return parse<T>(bytes, "load_safetensors: ");
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
