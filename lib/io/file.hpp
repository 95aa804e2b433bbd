#pragma once
// The one way the library opens files (not installed: lib/ internals).
//
// Reading goes through InputFile, which refuses anything but a regular file before reading a
// byte: a directory would otherwise read as an empty file ("empty", "malformed JSON"), a FIFO
// or a terminal would block forever, and a device can be endless. The file is opened
// non-blocking (so opening a FIFO returns at once) and checked with fstat on the open
// descriptor (no window for the path to be swapped between check and read).
// Writing checks the target with check_output_path: an existing directory, FIFO or device at
// the path is refused by name.
// Every error is an IoError "<who>: \"<path>\" ..." naming the path and the system's reason.
#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>

namespace tapegrad::detail {

class InputFile {
 public:
  // `who` names the public function in messages ("load_csv").
  InputFile(const std::string& path, const std::string& who);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  // The size when opened (st_size).
  std::uint64_t size() const { return size_; }
  // The next n bytes into `out`; IoError if the file ends before (it shrank while read).
  void read_exact(char* out, std::size_t n);
  // Everything from the current position to the end of the file.
  std::string read_rest();
  // A stream over the file from the current position (buffered reads of the descriptor).
  std::istream& stream();

 private:
  std::size_t read_some(char* out, std::size_t n);  // 0 at end of file
  std::string path_, who_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::unique_ptr<std::streambuf> buf_;
  std::unique_ptr<std::istream> stream_;
};

// "a directory", "a FIFO (named pipe)", "a character device", ...: what a non-regular file is.
std::string file_kind(mode_t mode);

// For a function about to write `path`: IoError if something other than a regular file is
// there (a directory, FIFO, device, socket). Returns the permission bits of the regular file
// already there (so a replacement can keep them), or nothing if there is none.
std::optional<mode_t> check_output_path(const std::string& path, const std::string& who);

}  // namespace tapegrad::detail
