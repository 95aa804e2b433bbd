#include "tapegrad/data/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "../io/file.hpp"
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/random.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/data/dataloader.hpp"
#include "tapegrad/data/dataset.hpp"

namespace tapegrad {

namespace {

// 'a', or '\n', or '\xC3' for a byte that does not print.
std::string char_str(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (c == '\n') return "'\\n'";
  if (c == '\t') return "'\\t'";
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "'\\x%02X'", u);
  return buf;
}

template <class T>
void ensure_shape(xt::xarray<T>& a, const Shape& shape) {
  if (a.shape() != shape) a.resize(shape);
}

}  // namespace

std::string default_text_dir() {
  if (const char* env = std::getenv("TAPEGRAD_DATA_DIR"); env != nullptr && *env != '\0') {
    return (std::filesystem::path(env) / "text").string();
  }
  // This file is <repo>/lib/data/text.cpp; CMake compiles it by absolute path.
  namespace fs = std::filesystem;
  const fs::path self(__FILE__);
  if (self.is_absolute()) {
    const fs::path repo = self.parent_path().parent_path().parent_path();
    std::error_code ec;
    if (fs::is_regular_file(repo / "scripts" / "fetch-text", ec)) return (repo / ".cache" / "text").string();
  }
  throw IoError(
      "default_text_dir: TAPEGRAD_DATA_DIR is not set and the tapegrad source tree this library "
      "was built from is not available; set TAPEGRAD_DATA_DIR (the corpus is read from "
      "$TAPEGRAD_DATA_DIR/text) or pass the file to load_text explicitly");
}

std::string default_corpus_path() {
  return (std::filesystem::path(default_text_dir()) / "fortunes.txt").string();
}

std::string load_text(const std::string& path, std::size_t max_bytes) {
  checked_size("load_text: max_bytes", max_bytes);
  detail::InputFile f(path, "load_text");
  if (f.size() == 0) throw IoError("load_text: \"" + path + "\" is empty; there is no text to model");
  if (max_bytes == 0 && f.size() > kMaxTextBytes) {
    throw IoError("load_text: \"" + path + "\" is " + std::to_string(f.size()) + " bytes, more than the " +
                  std::to_string(kMaxTextBytes) + " read whole; pass max_bytes to read a prefix");
  }
  const std::uint64_t want = max_bytes == 0 ? f.size() : std::min<std::uint64_t>(f.size(), max_bytes);
  std::string text(static_cast<std::size_t>(want), '\0');
  f.read_exact(text.data(), text.size());
  return text;
}

CharVocab::CharVocab(const std::string& text) {
  if (text.empty())
    throw ValueError("CharVocab: the text is empty; a vocabulary needs at least one character");
  std::array<bool, 256> seen{};
  for (const char c : text) seen[static_cast<unsigned char>(c)] = true;
  ids_.fill(-1);
  for (std::size_t b = 0; b < 256; ++b) {
    if (!seen[b]) continue;
    ids_[b] = static_cast<std::int16_t>(chars_.size());
    chars_.push_back(static_cast<char>(static_cast<unsigned char>(b)));
  }
}

std::int64_t CharVocab::id(char c) const {
  const std::int16_t i = ids_[static_cast<unsigned char>(c)];
  if (i < 0) {
    throw ValueError("CharVocab: character " + char_str(c) + " (byte " +
                     std::to_string(static_cast<unsigned char>(c)) + ") is not in the vocabulary of " +
                     std::to_string(size()) + " characters");
  }
  return i;
}

char CharVocab::char_at(std::int64_t id) const {
  if (id < 0 || static_cast<std::uint64_t>(id) >= size()) {
    throw ValueError("CharVocab: id " + std::to_string(id) + " is out of range for a vocabulary of " +
                     std::to_string(size()) + " characters (expected 0 <= id < " + std::to_string(size()) +
                     ")");
  }
  return chars_[static_cast<std::size_t>(id)];
}

std::vector<std::int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<std::int64_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::int16_t k = ids_[static_cast<unsigned char>(text[i])];
    if (k < 0) {
      throw ValueError("CharVocab::encode: character " + char_str(text[i]) + " (byte " +
                       std::to_string(static_cast<unsigned char>(text[i])) + ") at offset " +
                       std::to_string(i) + " is not in the vocabulary of " + std::to_string(size()) +
                       " characters");
    }
    ids[i] = k;
  }
  return ids;
}

std::string CharVocab::decode(const std::vector<std::int64_t>& ids) const {
  std::string text(ids.size(), '\0');
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<std::uint64_t>(ids[i]) >= size()) {
      throw ValueError("CharVocab::decode: id " + std::to_string(ids[i]) + " at position " +
                       std::to_string(i) + " is out of range for a vocabulary of " + std::to_string(size()) +
                       " characters");
    }
    text[i] = chars_[static_cast<std::size_t>(ids[i])];
  }
  return text;
}

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> contiguous_split(
    const std::vector<std::int64_t>& tokens, double validation_fraction) {
  if (!(validation_fraction > 0.0 && validation_fraction < 1.0)) {
    throw ValueError("contiguous_split: validation_fraction must be in (0, 1); got " +
                     std::to_string(validation_fraction));
  }
  const std::size_t n = tokens.size();
  // ceil(f n) in double: exact for any n below 2^53, far past what memory holds.
  const auto n_val = static_cast<std::size_t>(std::ceil(validation_fraction * static_cast<double>(n)));
  if (n_val == 0 || n_val >= n) {
    throw ValueError("contiguous_split: " + std::to_string(n) + " tokens with validation_fraction " +
                     std::to_string(validation_fraction) + " leave " +
                     std::to_string(n - std::min(n, n_val)) + " for training and " + std::to_string(n_val) +
                     " for validation; both must be non-empty");
  }
  const auto cut = tokens.begin() + static_cast<std::ptrdiff_t>(n - n_val);
  return {std::vector<std::int64_t>(tokens.begin(), cut), std::vector<std::int64_t>(cut, tokens.end())};
}

SequenceLoader::SequenceLoader(const std::vector<std::int64_t>& tokens, std::size_t seq_len,
                               std::size_t batch_size, bool shuffle, std::uint64_t seed, bool drop_last)
    : tokens_(&tokens),
      seq_len_(seq_len),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  checked_size("SequenceLoader: seq_len", seq_len);
  checked_size("SequenceLoader: batch_size", batch_size);
  if (seq_len == 0 || batch_size == 0) {
    throw ValueError("SequenceLoader: seq_len and batch_size must be >= 1; got seq_len " +
                     std::to_string(seq_len) + ", batch_size " + std::to_string(batch_size));
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0) {
      throw ValueError("SequenceLoader: token " + std::to_string(tokens[i]) + " at position " +
                       std::to_string(i) + " is negative; tokens are indices >= 0");
    }
  }
  windows_ = tokens.empty() ? 0 : (tokens.size() - 1) / seq_len;
  if (windows_ == 0) {
    throw ValueError("SequenceLoader: " + std::to_string(tokens.size()) +
                     " tokens make no window of seq_len " + std::to_string(seq_len) +
                     " (a window needs seq_len + 1 = " +
                     std::to_string(checked_add("SequenceLoader: seq_len + 1", seq_len, 1)) + " tokens)");
  }
}

std::size_t SequenceLoader::size() const {
  return windows_ / batch_size_ + (!drop_last_ && windows_ % batch_size_ != 0 ? 1 : 0);
}

std::vector<std::size_t> SequenceLoader::epoch_order(std::size_t epoch) const {
  if (shuffle_) {
    Generator gen(epoch_seed(seed_, epoch));
    return random_permutation(windows_, gen.engine());
  }
  std::vector<std::size_t> order(windows_);
  for (std::size_t i = 0; i < windows_; ++i) order[i] = i;
  return order;
}

void SequenceLoader::fill_batch(const std::vector<std::size_t>& order, std::size_t b,
                                SequenceBatch& out) const {
  if (b >= size() || order.size() != windows_) {
    throw ValueError("SequenceLoader::fill_batch: batch " + std::to_string(b) + " of an epoch with " +
                     std::to_string(size()) + " batches over an order of " + std::to_string(order.size()) +
                     " windows (the loader has " + std::to_string(windows_) + ")");
  }
  const std::size_t begin = b * batch_size_;
  const std::size_t count = std::min(batch_size_, windows_ - begin);
  for (std::size_t i = 0; i < count; ++i) {
    if (order[begin + i] >= windows_) {
      throw ValueError("SequenceLoader::fill_batch: order[" + std::to_string(begin + i) +
                       "] = " + std::to_string(order[begin + i]) + " is out of range for " +
                       std::to_string(windows_) + " windows");
    }
  }
  ensure_shape(out.inputs, {count, seq_len_});
  ensure_shape(out.targets, {count, seq_len_});
  out.starts.resize(count);
  const std::int64_t* x = tokens_->data();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t start = order[begin + i] * seq_len_;
    out.starts[i] = start;
    std::copy_n(x + start, seq_len_, out.inputs.data() + i * seq_len_);
    std::copy_n(x + start + 1, seq_len_, out.targets.data() + i * seq_len_);
  }
}

SequenceLoader::Iterator SequenceLoader::begin() {
  order_ = epoch_order(next_epoch_);
  ++next_epoch_;
  if (size() > 0) fill_batch(order_, 0, batch_);
  return Iterator(this, 0);
}

}  // namespace tapegrad
