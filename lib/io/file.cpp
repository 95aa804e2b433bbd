#include "file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tapegrad/core/error.hpp"

namespace tapegrad::detail {

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// A read-only streambuf over InputFile's descriptor, so text parsers can stream a large file
// instead of holding it whole.
class FileBuf : public std::streambuf {
 public:
  using Reader = std::size_t (*)(void*, char*, std::size_t);
  FileBuf(void* file, Reader read) : file_(file), read_(read) {}

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    const std::size_t n = read_(file_, buf_, sizeof buf_);
    if (n == 0) return traits_type::eof();
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  void* file_;
  Reader read_;
  char buf_[1 << 16];
};

// The system calls take a C string: an empty path, or a NUL byte that would silently cut the
// path short, cannot name the file the caller meant.
void check_path(const std::string& path, const std::string& who) {
  if (path.empty()) throw IoError(who + ": the path is empty");
  if (path.find('\0') != std::string::npos) {
    throw IoError(who + ": the path " + quoted(path.substr(0, path.find('\0'))) + "... contains a NUL byte");
  }
}

}  // namespace

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

InputFile::InputFile(const std::string& path, const std::string& who) : path_(path), who_(who) {
  check_path(path, who);
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one forever.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    throw IoError(who + ": cannot open " + quoted(path) + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd_);
    throw IoError(who + ": cannot stat " + quoted(path) + ": " + reason);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw IoError(who + ": " + quoted(path) + " is " + file_kind(st.st_mode) + ", not a regular file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  // A regular file never blocks; clear the flag so reads behave as usual.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read_some(char* out, std::size_t n) {
  for (;;) {
    const ssize_t r = ::read(fd_, out, n);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno != EINTR) {
      throw IoError(who_ + ": reading " + quoted(path_) + " failed: " + std::strerror(errno));
    }
  }
}

void InputFile::read_exact(char* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const std::size_t r = read_some(out + done, n - done);
    if (r == 0) {
      throw IoError(who_ + ": " + quoted(path_) + " ended " + std::to_string(n - done) +
                    " bytes early (it was " + std::to_string(size_) +
                    " bytes when opened: changed while being read?)");
    }
    done += r;
  }
}

std::string InputFile::read_rest() {
  std::string out;
  char chunk[1 << 16];
  for (std::size_t r; (r = read_some(chunk, sizeof chunk)) > 0;) out.append(chunk, r);
  return out;
}

std::istream& InputFile::stream() {
  if (!stream_) {
    buf_ = std::make_unique<FileBuf>(this, [](void* self, char* out, std::size_t n) {
      return static_cast<InputFile*>(self)->read_some(out, n);
    });
    stream_ = std::make_unique<std::istream>(buf_.get());
    // A read error inside the buffer surfaces as its IoError rather than a silent badbit.
    stream_->exceptions(std::ios::badbit);
  }
  return *stream_;
}

std::optional<mode_t> check_output_path(const std::string& path, const std::string& who) {
  check_path(path, who);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return std::nullopt;  // nothing there (or unreachable:
                          // creating it reports why)
  if (!S_ISREG(st.st_mode)) {
    throw IoError(who + ": " + quoted(path) + " is " + file_kind(st.st_mode) + ", not a regular file");
  }
  return st.st_mode & 07777;
}

}  // namespace tapegrad::detail
