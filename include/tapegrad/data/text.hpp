#pragma once
// Text for character-level language modelling: a corpus file, a byte vocabulary, a contiguous
// train/validation split, and a loader of BPTT windows.
//
//   const std::string text = tg::load_text(tg::default_corpus_path());  // scripts/fetch-text
//   const tg::CharVocab vocab(text);
//   const auto tokens = vocab.encode(text);
//   auto [train, valid] = tg::contiguous_split(tokens, 0.1);
//   tg::SequenceLoader loader(train, /*seq_len=*/64, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/0);
//   for (const tg::SequenceBatch& b : loader) {
//     auto x = emb(tape, b.inputs);                     // (B, L) -> (B, L, D)
//     ...                                               // logits (B, L, V) -> reshape (B*L, V)
//     auto loss = tg::cross_entropy(logits, b.targets); // (B, L) targets, read row-major
//   }
//
// The corpus: scripts/fetch-text builds <data dir>/text/fortunes.txt (2,419,593 bytes of English
// quotations, jokes and verse from Debian's fortune cookie packages; see the script for the
// files, the licence and the checksums).
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad {

// $TAPEGRAD_DATA_DIR/text if that variable is set; otherwise <source tree>/.cache/text when the
// library was built from a source tree that still exists (as default_mnist_dir); otherwise an
// IoError asking for TAPEGRAD_DATA_DIR. It does not check that the data is there.
std::string default_text_dir();
// default_text_dir() + "/fortunes.txt", the file scripts/fetch-text writes.
std::string default_corpus_path();

// The largest file load_text reads whole: 1 GiB (a larger one needs max_bytes).
constexpr std::size_t kMaxTextBytes = std::size_t(1) << 30;

// The bytes of the file at `path`, unchanged (no newline or encoding translation). With
// max_bytes > 0, only the first max_bytes (a slice for a quick run or a test). IoError naming
// the path for a missing or unreadable file, a directory or device, an empty file, and a file
// over kMaxTextBytes read whole (naming its size).
std::string load_text(const std::string& path, std::size_t max_bytes = 0);

// A character vocabulary over bytes: the distinct bytes of a text, sorted by unsigned value,
// id = rank (so '\n' < ' ' < 'A' < 'a'). A byte, not a code point: UTF-8 text with a
// multi-byte character has one token per byte of it, and any file can be encoded. (The
// fortunes corpus is nearly all ASCII.) Built from its own chars() it is the same vocabulary,
// which is how to save and restore one.
class CharVocab {
 public:
  // ValueError for an empty text.
  explicit CharVocab(const std::string& text);

  std::size_t size() const { return chars_.size(); }
  // The bytes in id order.
  const std::string& chars() const { return chars_; }
  bool contains(char c) const { return ids_[static_cast<unsigned char>(c)] >= 0; }
  // The id of c; ValueError naming the character (printable, or as \xNN) if it is not in the
  // vocabulary.
  std::int64_t id(char c) const;
  // The byte of id; ValueError naming id and size() unless 0 <= id < size().
  char char_at(std::int64_t id) const;

  // One id per byte; ValueError naming the first unknown character and its byte offset.
  std::vector<std::int64_t> encode(const std::string& text) const;
  // The bytes of ids; ValueError naming the first bad id and its position.
  std::string decode(const std::vector<std::int64_t>& ids) const;

 private:
  std::string chars_;
  std::array<std::int16_t, 256> ids_{};  // -1 for a byte that is not in the vocabulary
};

// (train, validation): the first n - n_val tokens and the last n_val = ceil(validation_fraction
// * n), in order: contiguous, not shuffled, so no window of one part overlaps the other.
// ValueError unless 0 < validation_fraction < 1 and both parts are non-empty.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> contiguous_split(
    const std::vector<std::int64_t>& tokens, double validation_fraction);

// A batch of language-modelling windows: row b is window starts[b] of the token stream x,
//   inputs(b, t) = x[starts[b] + t],   targets(b, t) = x[starts[b] + t + 1],   0 <= t < L
// (each target is the next token after its input), shapes (B, L), indices for embedding and
// cross_entropy.
struct SequenceBatch {
  xt::xarray<std::int64_t> inputs;
  xt::xarray<std::int64_t> targets;
  std::vector<std::size_t> starts;
  std::size_t size() const { return starts.size(); }
};

// Batches of BPTT windows of length seq_len L over a token stream of n tokens: window w starts
// at w L, for w = 0 .. W - 1 with W = (n - 1) / L (rounded down), so every window has its L
// targets and windows do not overlap; the last (n - 1) - W L tokens are never an input (at most
// L - 1 of them). Each window is an independent example (a model starts it from a zero state).
//
// Batches: the W windows in epoch order, batch_size at a time; the last batch has W mod B
// windows unless drop_last (then it is left out, and size() = floor(W / B)). Without shuffle
// the order is 0, 1, ..., W - 1. With shuffle, epoch e visits the windows in
// random_permutation(W, Generator(epoch_seed(seed, e)).engine()): the DataLoader's rule (see
// data/dataloader.hpp), a deterministic function of (seed, e). Each begin() starts the next
// epoch; set_epoch resumes. The loader keeps a pointer to the tokens (which must outlive it)
// and one SequenceBatch buffer that every step overwrites in place.
class SequenceLoader {
 public:
  // ValueError for seq_len or batch_size 0 (or a negative int passed as either), a negative
  // token (naming it and its position), or fewer than seq_len + 1 tokens (no window).
  SequenceLoader(const std::vector<std::int64_t>& tokens, std::size_t seq_len, std::size_t batch_size,
                 bool shuffle = false, std::uint64_t seed = 0, bool drop_last = false);
  // A temporary token vector would dangle: keep it in a variable.
  SequenceLoader(std::vector<std::int64_t>&& tokens, std::size_t seq_len, std::size_t batch_size,
                 bool shuffle = false, std::uint64_t seed = 0, bool drop_last = false) = delete;

  std::size_t num_windows() const { return windows_; }
  // Batches per epoch: ceil(W / B), or floor(W / B) with drop_last.
  std::size_t size() const;
  std::size_t seq_len() const { return seq_len_; }
  std::size_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }

  // The window order of epoch `epoch` (all W windows).
  std::vector<std::size_t> epoch_order(std::size_t epoch) const;
  std::size_t next_epoch() const { return next_epoch_; }
  void set_epoch(std::size_t epoch) { next_epoch_ = epoch; }
  // Writes batch b (0 <= b < size()) of `order` into out, reusing its buffers. ValueError for b
  // out of range, an order of another length or holding a window index >= W.
  void fill_batch(const std::vector<std::size_t>& order, std::size_t b, SequenceBatch& out) const;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = SequenceBatch;
    using difference_type = std::ptrdiff_t;
    using pointer = const SequenceBatch*;
    using reference = const SequenceBatch&;

    Iterator(SequenceLoader* loader, std::size_t b) : loader_(loader), b_(b) {}
    reference operator*() const { return loader_->batch_; }
    pointer operator->() const { return &loader_->batch_; }
    Iterator& operator++() {
      if (++b_ < loader_->size()) loader_->fill_batch(loader_->order_, b_, loader_->batch_);
      return *this;
    }
    bool operator==(const Iterator& o) const { return loader_ == o.loader_ && b_ == o.b_; }
    bool operator!=(const Iterator& o) const { return !(*this == o); }

   private:
    SequenceLoader* loader_;
    std::size_t b_;
  };

  // Starts epoch next_epoch() (and advances it) and loads its first batch.
  Iterator begin();
  Iterator end() { return Iterator(this, size()); }

 private:
  const std::vector<std::int64_t>* tokens_;
  std::size_t seq_len_, batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_last_;
  std::size_t windows_ = 0;
  std::size_t next_epoch_ = 0;
  std::vector<std::size_t> order_;
  SequenceBatch batch_;
};

}  // namespace tapegrad
