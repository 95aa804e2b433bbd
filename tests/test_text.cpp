// Text for language modelling: load_text, CharVocab, contiguous_split and SequenceLoader, on
// synthetic strings (exact checks) and on a slice of the real corpus (scripts/fetch-text;
// skipped with a warning when it is absent).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "expect_error.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using tgtest::expect_error;
using Tokens = std::vector<std::int64_t>;

namespace {

std::string corpus_path() {
  if (const char* env = std::getenv("TAPEGRAD_DATA_DIR"); env != nullptr && *env != '\0') {
    return std::string(env) + "/text/fortunes.txt";
  }
  return std::string(TAPEGRAD_SOURCE_DIR) + "/.cache/text/fortunes.txt";
}

// 0, 1, ..., n-1: each token is its own position, so a window's tokens name where they came from.
Tokens iota_tokens(std::size_t n) {
  Tokens t(n);
  std::iota(t.begin(), t.end(), 0);
  return t;
}

// Every window of one epoch, in visiting order, checking each batch's shapes and that its
// targets are its inputs shifted by one.
std::vector<std::size_t> run_epoch(tg::SequenceLoader& loader, const Tokens& x,
                                   std::vector<std::size_t>* sizes = nullptr) {
  std::vector<std::size_t> starts;
  const std::size_t L = loader.seq_len();
  for (const tg::SequenceBatch& b : loader) {
    REQUIRE(b.inputs.shape() == tg::Shape({b.size(), L}));
    REQUIRE(b.targets.shape() == tg::Shape({b.size(), L}));
    for (std::size_t r = 0; r < b.size(); ++r) {
      CHECK(b.starts[r] % L == 0);
      for (std::size_t t = 0; t < L; ++t) {
        CHECK(b.inputs(r, t) == x[b.starts[r] + t]);
        CHECK(b.targets(r, t) == x[b.starts[r] + t + 1]);
        if (t + 1 < L) CHECK(b.targets(r, t) == b.inputs(r, t + 1));
      }
      starts.push_back(b.starts[r]);
    }
    if (sizes) sizes->push_back(b.size());
  }
  return starts;
}

}  // namespace

TEST_CASE("CharVocab holds the sorted distinct bytes; encode and decode are inverse") {
  const std::string text = "hello, world\nhe said";
  const tg::CharVocab v(text);
  CHECK(v.chars() == std::string("\n ,adehilorsw"));
  CHECK(v.size() == 13);
  CHECK(v.id('\n') == 0);
  CHECK(v.id('w') == 12);
  CHECK(v.char_at(5) == 'e');
  CHECK(v.contains('h'));
  CHECK(!v.contains('x'));
  const Tokens ids = v.encode(text);
  REQUIRE(ids.size() == text.size());
  CHECK(ids[0] == v.id('h'));
  CHECK(v.decode(ids) == text);
  CHECK(tg::CharVocab(v.chars()).chars() == v.chars());  // rebuilt from its own chars
  // Bytes, not code points: "é" in UTF-8 is two tokens, and every byte value can be a token.
  const tg::CharVocab u("caf\xC3\xA9");
  CHECK(u.encode("\xC3\xA9").size() == 2);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const tg::CharVocab bytes(all + all);
  CHECK(bytes.size() == 256);
  CHECK(bytes.id('\0') == 0);
  CHECK(bytes.id(static_cast<char>(0xFF)) == 255);
  CHECK(bytes.decode(bytes.encode(all)) == all);
}

TEST_CASE("contiguous_split keeps the last ceil(f n) tokens for validation, in order") {
  const Tokens x = iota_tokens(10);
  auto [train, valid] = tg::contiguous_split(x, 0.25);
  CHECK(train == Tokens{0, 1, 2, 3, 4, 5, 6});
  CHECK(valid == Tokens{7, 8, 9});
  auto [a, b] = tg::contiguous_split(x, 0.01);
  CHECK(a.size() == 9);
  CHECK(b == Tokens{9});
}

TEST_CASE("SequenceLoader windows: every target is its input shifted by one, windows tile the stream") {
  const Tokens x =
      iota_tokens(23);  // (23 - 1) / 5 = 4 windows at 0, 5, 10, 15; tokens 21, 22 unused as inputs
  tg::SequenceLoader loader(x, 5, 3);
  CHECK(loader.num_windows() == 4);
  CHECK(loader.size() == 2);
  std::vector<std::size_t> sizes;
  CHECK(run_epoch(loader, x, &sizes) == std::vector<std::size_t>{0, 5, 10, 15});
  CHECK(sizes == std::vector<std::size_t>{3, 1});
  tg::SequenceLoader dropping(x, 5, 3, false, 0, true);
  CHECK(dropping.size() == 1);
  sizes.clear();
  CHECK(run_epoch(dropping, x, &sizes) == std::vector<std::size_t>{0, 5, 10});
  CHECK(sizes == std::vector<std::size_t>{3});
  // Exactly L + 1 tokens make one window; the last token is only a target.
  const Tokens six = iota_tokens(6);
  tg::SequenceLoader one(six, 5, 8);
  CHECK(one.num_windows() == 1);
  CHECK(run_epoch(one, six) == std::vector<std::size_t>{0});
  const Tokens eleven = iota_tokens(11);
  CHECK(tg::SequenceLoader(eleven, 5, 1).num_windows() == 2);
  CHECK(tg::SequenceLoader(eleven, 1, 4).num_windows() == 10);
}

TEST_CASE("SequenceLoader shuffle: a permutation per epoch, the same for the same seed, new each epoch") {
  const Tokens x = iota_tokens(401);  // 100 windows of 4
  tg::SequenceLoader a(x, 4, 7, true, 42);
  tg::SequenceLoader b(x, 4, 7, true, 42);
  tg::SequenceLoader c(x, 4, 7, true, 43);
  const auto e0 = run_epoch(a, x);
  const auto e1 = run_epoch(a, x);
  std::vector<std::size_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> all(100);
  for (std::size_t i = 0; i < 100; ++i) all[i] = 4 * i;
  CHECK(sorted == all);  // every window once
  sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == all);
  CHECK(e0 != all);              // shuffled (a fixed order has probability 1/100!)
  CHECK(e0 != e1);               // a new order each epoch
  CHECK(run_epoch(b, x) == e0);  // same seed, same orders
  CHECK(run_epoch(b, x) == e1);
  CHECK(run_epoch(c, x) != e0);  // another seed
  // set_epoch resumes with the same order, and epoch_order is what an epoch visits.
  b.set_epoch(1);
  CHECK(run_epoch(b, x) == e1);
  const auto order = a.epoch_order(0);
  for (std::size_t i = 0; i < 100; ++i) CHECK(order[i] * 4 == e0[i]);
  CHECK(a.next_epoch() == 2);
}

TEST_CASE("SequenceLoader batches feed embedding and sequence cross_entropy directly") {
  const tg::CharVocab v("abcdefgh");
  const Tokens x = v.encode("abcabcabcdefghhgfedcba");
  tg::SequenceLoader loader(x, 4, 2, true, 1);
  tg::Generator gen(0);
  tg::Embedding<double> emb(v.size(), 3, {}, gen);
  tg::Linear<double> head(3, v.size(), {}, gen);
  for (const auto& b : loader) {
    tg::Tape<double> t;
    auto logits = head(t, emb(t, b.inputs));  // (B, L, V)
    REQUIRE(logits.shape() == tg::Shape({b.size(), 4, v.size()}));
    auto rows = tg::reshape(logits, {-1, static_cast<std::ptrdiff_t>(v.size())});
    auto loss = tg::cross_entropy(rows, b.targets);  // (B, L) targets with (B*L, V) rows
    auto same = tg::cross_entropy(tg::permute(logits, {0, 2, 1}), b.targets);  // (B, V, L)
    CHECK(loss.item() == Approx(same.item()).epsilon(1e-14));
    t.backward(loss);
  }
}

TEST_CASE("load_text reads the bytes of a file, or its first max_bytes") {
  const auto dir = tgtest::scratch_dir("text", "load");
  const auto path = (dir / "t.txt").string();
  std::ofstream(path, std::ios::binary) << "line one\r\nline two\n\xC3\xA9";
  CHECK(tg::load_text(path) == "line one\r\nline two\n\xC3\xA9");
  CHECK(tg::load_text(path, 4) == "line");
  CHECK(tg::load_text(path, 1000).size() == 21);
  fs::remove_all(dir);
}

TEST_CASE("default_text_dir honours TAPEGRAD_DATA_DIR and falls back to the source tree's .cache/text") {
  const char* old = std::getenv("TAPEGRAD_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("TAPEGRAD_DATA_DIR", "/some/data", 1);
  CHECK(tg::default_text_dir() == "/some/data/text");
  CHECK(tg::default_corpus_path() == "/some/data/text/fortunes.txt");
  ::unsetenv("TAPEGRAD_DATA_DIR");
  CHECK(fs::path(tg::default_text_dir()) == fs::path(TAPEGRAD_SOURCE_DIR) / ".cache" / "text");
  if (old) ::setenv("TAPEGRAD_DATA_DIR", saved.c_str(), 1);
}

TEST_CASE("a 64 KB slice of the real corpus: English text, a small vocabulary, windows over it") {
  const std::string path = corpus_path();
  if (!fs::exists(path)) {
    WARN("text corpus not found at " << path << ": test skipped. Run scripts/fetch-text to enable it.");
    return;
  }
  CHECK(fs::file_size(path) == 2419593);  // the corpus scripts/fetch-text pins
  const std::string text = tg::load_text(path, 65536);
  REQUIRE(text.size() == 65536);
  CHECK(text.rfind("A day for firm decisions!!!!!  Or is it?\n\n", 0) == 0);  // the first cookie
  const tg::CharVocab v(text);
  CHECK(v.size() > 60);  // letters of both cases, digits, punctuation, space, tab, newline
  CHECK(v.size() < 100);
  for (const char c : std::string("\n etaoinsETAOINS.,")) CHECK(v.contains(c));
  std::size_t letters = 0, spaces = 0, e = 0;
  for (const char c : text) {
    letters += std::isalpha(static_cast<unsigned char>(c)) ? 1 : 0;
    spaces += c == ' ' ? 1 : 0;
    e += c == 'e' ? 1 : 0;
  }
  CHECK(letters > text.size() * 6 / 10);  // English prose: mostly letters,
  CHECK(spaces > text.size() / 10);       // a space every 5 to 8 characters,
  CHECK(e > letters / 14);                // and 'e' the commonest letter (~12% of them)
  const Tokens ids = v.encode(text);
  CHECK(v.decode(ids) == text);
  auto [train, valid] = tg::contiguous_split(ids, 0.1);
  CHECK(valid.size() == 6554);
  tg::SequenceLoader loader(train, 64, 16, true, 7);
  CHECK(loader.num_windows() == (train.size() - 1) / 64);
  std::size_t windows = 0;
  for (const auto& b : loader) {
    windows += b.size();
    for (std::size_t r = 0; r < b.size(); ++r) CHECK(b.targets(r, 63) == train[b.starts[r] + 64]);
  }
  CHECK(windows == loader.num_windows());
  // The whole file loads and encodes with the vocabulary of the whole file.
  const std::string all = tg::load_text(path);
  CHECK(all.size() == 2419593);
  const tg::CharVocab full(all);
  CHECK(full.size() > v.size());
  CHECK(full.encode(all).size() == all.size());
}

TEST_CASE("load_text of a missing, empty or directory path is an IoError naming the path") {
  const auto dir = tgtest::scratch_dir("text", "bad");
  const auto missing = (dir / "missing.txt").string();
  expect_error<tg::IoError>([&] { tg::load_text(missing); }, {"load_text", missing});
  const auto empty = (dir / "empty.txt").string();
  std::ofstream(empty).close();
  expect_error<tg::IoError>([&] { tg::load_text(empty); }, {"load_text", empty, "empty"});
  expect_error<tg::IoError>([&] { tg::load_text(dir.string()); }, {"load_text", "directory"});
  expect_error<tg::ValueError>([&] { tg::load_text(empty, static_cast<std::size_t>(-1)); },
                               {"max_bytes", "-1"});
  fs::remove_all(dir);
}

TEST_CASE("CharVocab refuses an empty text, an unknown character and an id out of range, naming them") {
  expect_error<tg::ValueError>([] { tg::CharVocab(""); }, {"CharVocab", "empty"});
  const tg::CharVocab v("abc\n");
  expect_error<tg::ValueError>([&] { v.encode("abxc"); }, {"encode", "'x'", "offset 2", "4 characters"});
  expect_error<tg::ValueError>([&] { v.encode("a\tb"); }, {"'\\t'", "offset 1"});
  expect_error<tg::ValueError>([&] { v.encode("ab\xC3"); }, {"'\\xC3'", "byte 195", "offset 2"});
  expect_error<tg::ValueError>([&] { v.id('Z'); }, {"'Z'", "not in the vocabulary"});
  expect_error<tg::ValueError>([&] { v.decode({0, 4}); }, {"decode", "id 4", "position 1", "4 characters"});
  expect_error<tg::ValueError>([&] { v.decode({-1}); }, {"id -1", "position 0"});
  expect_error<tg::ValueError>([&] { v.char_at(7); }, {"id 7", "0 <= id < 4"});
}

TEST_CASE("contiguous_split with a fraction outside (0, 1) or an empty part is a ValueError naming it") {
  const Tokens x = iota_tokens(3);
  expect_error<tg::ValueError>([&] { tg::contiguous_split(x, 0.0); }, {"contiguous_split", "(0, 1)", "0.0"});
  expect_error<tg::ValueError>([&] { tg::contiguous_split(x, 1.0); }, {"(0, 1)", "1.0"});
  expect_error<tg::ValueError>([&] { tg::contiguous_split(x, std::nan("")); }, {"(0, 1)", "nan"});
  expect_error<tg::ValueError>([&] { tg::contiguous_split(x, 0.9); },
                               {"3 tokens", "0 for training", "3 for validation"});
  expect_error<tg::ValueError>([&] { tg::contiguous_split(Tokens{}, 0.5); }, {"0 tokens"});
}

TEST_CASE(
    "SequenceLoader with seq_len or batch_size 0, a negative token or too few tokens is a ValueError naming it") {
  const Tokens x = iota_tokens(10);
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(x, 0, 2); }, {"SequenceLoader", "seq_len 0"});
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(x, 3, 0); }, {"batch_size 0"});
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(x, static_cast<std::size_t>(-1), 2); },
                               {"seq_len", "-1"});
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(x, 2, static_cast<std::size_t>(-2)); },
                               {"batch_size", "-2"});
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(x, 10, 2); },
                               {"10 tokens", "seq_len 10", "11 tokens"});
  const Tokens none;
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(none, 1, 1); }, {"0 tokens"});
  const Tokens neg = {0, 1, -3, 2};
  expect_error<tg::ValueError>([&] { tg::SequenceLoader(neg, 1, 1); }, {"token -3", "position 2"});
  tg::SequenceLoader loader(x, 3, 2);  // 3 windows, 2 batches
  tg::SequenceBatch b;
  expect_error<tg::ValueError>([&] { loader.fill_batch(loader.epoch_order(0), 2, b); },
                               {"batch 2", "2 batches"});
  expect_error<tg::ValueError>([&] { loader.fill_batch({0, 1}, 0, b); }, {"order of 2", "3"});
  expect_error<tg::ValueError>([&] { loader.fill_batch({0, 1, 3}, 1, b); }, {"order[2] = 3", "3 windows"});
  CHECK(b.size() == 0);
}
