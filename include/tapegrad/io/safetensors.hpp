#pragma once
// Tensors to and from files in the safetensors format (https://github.com/huggingface/safetensors):
//
//   [8 bytes: N, little-endian u64][N bytes: JSON header][data section: raw little-endian values]
//
// The header maps each tensor name to {"dtype": "F32"|"F64", "shape": [...],
// "data_offsets": [begin, end]} (byte offsets into the data section), plus an optional
// "__metadata__": {string: string}. As the reference implementation does, we write the header
// padded with spaces to a multiple of 8 bytes (so the data is 8-byte aligned) and lay the
// tensors out contiguously, here in sorted-name order.
//
// Loading checks everything before it returns anything; any violation is an IoError naming the
// tensor and the numbers. The header must be what the format describes, a flat object of
// objects (a value nested elsewhere, or a name given twice, is an IoError naming it; unknown
// members of an entry are skipped if small); it is read as a stream, never as a JSON tree, and
// from a file only after its length was checked against the file's size. A load holds the
// header and then the tensors plus a 1 MiB buffer, never a copy of the file. Only regular files
// are read: a directory, FIFO or device is an IoError saying so (a FIFO is never waited on). Files with F32 or F64 tensors are read into either T (an F64 value
// outside float's range becomes +-inf in a float load); other safetensors dtypes (F16, BF16,
// I64, ...) are reported as unsupported.
#include <cstddef>
#include <limits>
#include <map>
#include <string>

#include <xtensor/xarray.hpp>

namespace tapegrad {

template <class T>
using TensorMap = std::map<std::string, xt::xarray<T>>;

template <class T>
struct SafetensorsData {
  TensorMap<T> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry, if any
};

// The largest header we accept, as the reference implementation (100 MB).
constexpr std::size_t kSafetensorsMaxHeader = 100'000'000;

// The bytes of a safetensors file holding `tensors` as F32 (T = float) or F64 (T = double).
// ValueError for the reserved name "__metadata__", and for a tensor name or metadata string
// that is not valid UTF-8 (the header is JSON text), naming the string and the byte.
template <class T>
std::string safetensors_to_bytes(const TensorMap<T>& tensors,
                                 const std::map<std::string, std::string>& metadata = {});

// Writes safetensors_to_bytes(...) to `path` atomically (write_file_atomic): afterwards `path`
// holds either the complete new file or, if anything failed, whatever it held before.
template <class T>
void save_safetensors(const std::string& path, const TensorMap<T>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates a whole file. IoError if it cannot be read or is not valid safetensors.
template <class T>
SafetensorsData<T> load_safetensors(const std::string& path);
// The same from the file's bytes (in-memory use, fuzzing).
template <class T>
SafetensorsData<T> load_safetensors_from_bytes(const std::string& bytes);

// Replaces the file at `path` with `bytes` so that a crash or error never leaves a partial file
// there: the bytes go to a new temporary file in the same directory (<name>.tmp-<pid>-<random>),
// which is flushed to disk (fsync) and then renamed over `path` (atomic on POSIX); the directory
// is then fsync'ed so the rename itself is durable. A file that is replaced keeps its
// permission bits (a 0600 file stays 0600); a directory, FIFO or device at `path` is an IoError. On any error the temporary file is removed
// and an IoError names the path and the system error. (A process killed mid-write can still
// leave a stray temporary file, never a damaged `path`.)
// `fail_after_bytes` is a test hook: when it is < bytes.size(), only that many bytes are written
// and then an IoError is thrown, as if the disk had failed.
void write_file_atomic(const std::string& path, const std::string& bytes,
                       std::size_t fail_after_bytes = std::numeric_limits<std::size_t>::max());

}  // namespace tapegrad
