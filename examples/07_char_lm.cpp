// Chapter 7: a character-level language model on real text.
//
// A language model assigns a probability to the next symbol given the ones before it. Here a
// symbol is one byte of English text (quotations, jokes and verse from Debian's fortune cookie
// packages; scripts/fetch-text builds the corpus once). The model reads a window of L
// characters and, at every position t, predicts character t + 1:
//
//   ids (B, L) -> Embedding -> (B, L, E) -> recurrent cell -> (B, L, H) -> Linear -> (B, L, V)
//
// and is trained with the cross-entropy of the true next character, in nats (natural log).
// Divided by ln 2 it is in bits per character (bpc): the average number of bits an ideal coder
// driven by the model would spend on each character of new text. Two reference points: a model
// that knows nothing spends log2(V) bits (~6.6 for this corpus's V ~ 100 characters); the
// unigram model, which knows only how often each character occurs in the training text, spends
// ~4.4 bits. Everything below that the network has learned from context: spelling, words,
// punctuation. The validation text is the last 10% of the slice, never trained on.
//
// The library pieces: load_text, CharVocab, contiguous_split and SequenceLoader (data/text.hpp),
// Embedding, LSTM / GRU / LNLSTM / RNN (--cell), Linear, cross_entropy over (N, C, T), Adam,
// clip_grad_norm, and save_checkpoint / load_checkpoint. Each training window starts from a
// zero state (truncated BPTT of length L, windows shuffled every epoch); the validation bpc is
// measured the same way. After training the model writes --sample-len characters after a
// prompt, feeding back each character it draws from softmax(logits / temperature); the draws
// come from a Generator seeded with --seed, so the same seed gives the same text.
//
//   07_char_lm                             # LSTM, default size: ~30 s of CPU (Release)
//   07_char_lm --cell gru --temperature 0.6
//   07_char_lm --quick --plot              # 07_char_lm_metrics.csv and 07_char_lm_metrics.png
//   07_char_lm --epochs 2 --save lm.safetensors && 07_char_lm --epochs 4 --resume lm.safetensors
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <tuple>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

#include "plot_flag.hpp"

namespace tg = tapegrad;

namespace {

struct Options {
  std::string cell = "lstm";
  std::size_t hidden = 128;
  std::size_t embed = 32;
  std::size_t seq_len = 64;
  std::size_t batch_size = 32;
  std::size_t epochs = 5;
  double lr = 1e-2;
  double clip = 1.0;
  std::uint64_t seed = 0;
  std::size_t max_bytes = 500000;
  double valid_fraction = 0.1;
  std::string corpus;
  double temperature = 0.7;
  std::size_t sample_len = 300;
  std::string prompt = "The ";
  std::string save;
  std::string resume;
  std::string log;
  bool quick = false;
  int blas_threads = 1;
};

// The recurrent state carried between calls while sampling: h (and c for the LSTMs), shaped
// (1, N, H); 0-d (a default xarray) for zeros.
struct CellState {
  xt::xarray<float> h, c;
};

class CharLM : public tg::Module<float> {
 public:
  CharLM(const Options& o, std::size_t vocab, tg::Generator& gen) {
    embed_ = &this->register_module(
        "embed", std::make_shared<tg::Embedding<float>>(vocab, o.embed, tg::EmbeddingOptions(), gen));
    if (o.cell == "lstm") {
      lstm_ = &this->register_module(
          "cell",
          std::make_shared<tg::LSTM<float>>(o.embed, o.hidden, tg::LSTMOptions().batch_first(true), gen));
    } else if (o.cell == "gru") {
      gru_ = &this->register_module("cell", std::make_shared<tg::GRU<float>>(
                                                o.embed, o.hidden, tg::GRUOptions().batch_first(true), gen));
    } else if (o.cell == "lnlstm") {
      lnlstm_ = &this->register_module(
          "cell",
          std::make_shared<tg::LNLSTM<float>>(o.embed, o.hidden, tg::LNLSTMOptions().batch_first(true), gen));
    } else {
      rnn_ = &this->register_module("cell", std::make_shared<tg::RNN<float>>(
                                                o.embed, o.hidden, tg::RNNOptions().batch_first(true), gen));
    }
    head_ = &this->register_module(
        "head", std::make_shared<tg::Linear<float>>(o.hidden, vocab, tg::LinearOptions(), gen));
  }

  // ids (B, L) -> logits (B, L, V). With a state, the cell starts from it and it is replaced by
  // the cell's last state (for sampling); without, every window starts from zeros.
  tg::Var<float> logits(tg::Tape<float>& t, const xt::xarray<std::int64_t>& ids, CellState* state = nullptr) {
    const tg::Var<float> x = (*embed_)(t, ids);
    tg::Var<float> h0, c0;  // undefined: zeros
    if (state != nullptr && state->h.dimension() > 0) h0 = t.constant(state->h);
    if (state != nullptr && state->c.dimension() > 0) c0 = t.constant(state->c);
    tg::LSTMOutput<float> out;
    if (lstm_ != nullptr) {
      out = lstm_->run(t, x, h0, c0);
    } else if (lnlstm_ != nullptr) {
      out = lnlstm_->run(t, x, h0, c0);
    } else {
      const tg::RNNOutput<float> r = gru_ != nullptr ? gru_->run(t, x, h0) : rnn_->run(t, x, h0);
      out.output = r.output;
      out.h_n = r.h_n;
    }
    if (state != nullptr) {
      state->h = out.h_n.value();
      if (out.c_n.defined()) state->c = out.c_n.value();
    }
    return head_->forward(t, out.output);
  }

  // Module's interface: logits of x, which holds the (B, L) indices as floats.
  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) override {
    return logits(t, xt::xarray<std::int64_t>(xt::cast<std::int64_t>(x.value())));
  }
  std::string type_name() const override { return "CharLM"; }

 private:
  tg::Embedding<float>* embed_ = nullptr;
  tg::LSTM<float>* lstm_ = nullptr;
  tg::GRU<float>* gru_ = nullptr;
  tg::LNLSTM<float>* lnlstm_ = nullptr;
  tg::RNN<float>* rnn_ = nullptr;
  tg::Linear<float>* head_ = nullptr;
};

// The mean cross-entropy in nats of a batch: logits (B, L, V) are permuted to PyTorch's
// (N, C, T) layout, classes on axis 1, with targets (B, L).
tg::Var<float> batch_loss(CharLM& model, tg::Tape<float>& t, const tg::SequenceBatch& b,
                          tg::Reduction reduction = tg::Reduction::Mean) {
  const tg::Var<float> logits = tg::permute(model.logits(t, b.inputs), {0, 2, 1});
  tg::CrossEntropyOptions ce;
  ce.reduction = reduction;
  return tg::cross_entropy(logits, b.targets, ce);
}

// The unigram baseline: character frequencies counted on the training text, with one extra
// count for every character of the vocabulary (add-one smoothing: a character that appears only
// in the validation text must not cost infinitely many bits), scored on the validation text.
double unigram_bpc(const std::vector<std::int64_t>& train, const std::vector<std::int64_t>& valid,
                   std::size_t vocab) {
  std::vector<double> count(vocab, 1.0);
  for (std::int64_t id : train) count[static_cast<std::size_t>(id)] += 1;
  const double total = static_cast<double>(train.size() + vocab);
  double bits = 0;
  for (std::int64_t id : valid) bits -= std::log2(count[static_cast<std::size_t>(id)] / total);
  return bits / static_cast<double>(valid.size());
}

// Validation bits per character: the summed cross-entropy of every window's targets over their
// number, / ln 2. Eval mode, no graph.
double validation_bpc(CharLM& model, tg::SequenceLoader& loader) {
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tape<float> tape;
  double nats = 0;
  std::size_t chars = 0;
  for (const tg::SequenceBatch& b : loader) {
    tape.reset();
    nats += batch_loss(model, tape, b, tg::Reduction::Sum).item();
    chars += b.targets.size();
  }
  model.train();
  return nats / static_cast<double>(chars) / std::log(2.0);
}

// One pass over the training windows; returns the mean training loss in nats.
double train_epoch(CharLM& model, tg::Adam<float>& opt, tg::SequenceLoader& loader, double clip,
                   std::size_t epoch, tg::ProgressLine& progress) {
  tg::Tape<float> tape;
  double loss_sum = 0;
  for (const tg::SequenceBatch& b : loader) {
    tape.reset();
    const tg::Var<float> loss = batch_loss(model, tape, b);
    opt.zero_grad();
    tape.backward(loss);
    if (clip > 0) tg::clip_grad_norm(model.parameters(), clip);
    opt.step();
    loss_sum += loss.item();
    progress.step(epoch, loss.item(), b.size());
  }
  return loss_sum / static_cast<double>(loader.size());
}

// Draws a character id from softmax(logits / temperature) (one row of V values).
std::int64_t draw(const float* logits, std::size_t vocab, double temperature, tg::Generator& gen) {
  double top = logits[0];
  for (std::size_t i = 1; i < vocab; ++i) top = std::max(top, static_cast<double>(logits[i]));
  std::vector<double> p(vocab);
  double sum = 0;
  for (std::size_t i = 0; i < vocab; ++i) sum += p[i] = std::exp((logits[i] - top) / temperature);
  double u = gen.uniform(0.0, sum);
  for (std::size_t i = 0; i < vocab; ++i) {
    if ((u -= p[i]) < 0) return static_cast<std::int64_t>(i);
  }
  return static_cast<std::int64_t>(vocab - 1);
}

// The prompt followed by `length` characters drawn one at a time, each fed back as the next
// input with the cell's state carried over.
std::string sample(CharLM& model, const tg::CharVocab& vocab, const Options& o) {
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Generator gen(o.seed);
  tg::Tape<float> tape;
  CellState state;
  const std::vector<std::int64_t> prompt = vocab.encode(o.prompt);
  xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({1, prompt.size()});
  std::copy(prompt.begin(), prompt.end(), ids.begin());
  std::string text = o.prompt;
  for (std::size_t i = 0; i < o.sample_len; ++i) {
    tape.reset();
    const xt::xarray<float>& logits = model.logits(tape, ids, &state).value();  // (1, L, V)
    const float* last = logits.data() + (ids.size() - 1) * vocab.size();
    const std::int64_t next = draw(last, vocab.size(), o.temperature, gen);
    text += vocab.char_at(next);
    ids.resize({1, 1});
    ids(0, 0) = next;
  }
  model.train();
  return text;
}

// ---- checkpoints ---------------------------------------------------------------------------
// Besides the model and Adam's state (save_checkpoint), a checkpoint records the flags that fix
// the model's shape and the vocabulary (as hex bytes), so --resume can refuse a file that does
// not fit with a message saying why, and the last validation bpc (for "vs the previous epoch").

std::string model_flags(const Options& o) {
  return "--cell " + o.cell + " --hidden " + std::to_string(o.hidden) + " --embed " + std::to_string(o.embed);
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

void save(const Options& o, const CharLM& model, const tg::Adam<float>& opt, std::size_t epoch,
          const tg::CharVocab& vocab, double bpc) {
  std::ostringstream bpc_text;
  bpc_text.precision(17);
  bpc_text << bpc;
  tg::save_checkpoint(o.save, model, &opt, static_cast<std::int64_t>(epoch),
                      {{"example", "07_char_lm"},
                       {"model", model_flags(o)},
                       {"vocab", hex(vocab.chars())},
                       {"valid_bpc", bpc_text.str()}});
}

// Loads o.resume into model and opt after checking that it was written by this program for the
// same model and vocabulary; returns (epochs done, their last validation bpc). tg::ValueError
// with the reason otherwise.
std::pair<std::size_t, double> resume(const Options& o, CharLM& model, tg::Adam<float>& opt,
                                      const tg::CharVocab& vocab) {
  const auto ck = tg::read_checkpoint<float>(o.resume);
  const auto get = [&](const std::string& key) {
    const auto it = ck.metadata.find(key);
    return it == ck.metadata.end() ? std::string() : it->second;
  };
  if (get("example") != "07_char_lm")
    throw tg::ValueError("checkpoint '" + o.resume + "' was not written by 07_char_lm");
  if (get("model") != model_flags(o))
    throw tg::ValueError("checkpoint '" + o.resume + "' holds a model built with " + get("model") +
                         "; this run builds " + model_flags(o) + ": pass the same flags to resume it");
  if (get("vocab") != hex(vocab.chars()))
    throw tg::ValueError("checkpoint '" + o.resume + "' was trained with another vocabulary (" +
                         std::to_string(get("vocab").size() / 2) + " characters; this corpus slice has " +
                         std::to_string(vocab.size()) + "): use the same corpus and --max-bytes");
  const std::int64_t epoch = tg::load_checkpoint(o.resume, model, &opt);
  return {static_cast<std::size_t>(epoch), std::stod(get("valid_bpc"))};
}

// ---- the run -------------------------------------------------------------------------------

// Trains epochs (first, o.epochs], printing one line per epoch; returns the last validation bpc.
double train(const Options& o, CharLM& model, tg::Adam<float>& opt, const tg::CharVocab& vocab,
             const std::vector<std::int64_t>& train_ids, const std::vector<std::int64_t>& valid_ids,
             std::size_t first, double previous, tg::MetricsLog* log) {
  tg::SequenceLoader loader(train_ids, o.seq_len, o.batch_size, /*shuffle=*/true, o.seed);
  tg::SequenceLoader valid_loader(valid_ids, o.seq_len, 256);
  loader.set_epoch(first);  // so a resumed run visits the windows in the same order
  std::printf("%zu training windows of %zu characters, %zu batches per epoch; Adam lr %g, clip %g\n\n",
              loader.num_windows(), o.seq_len, loader.size(), o.lr, o.clip);
  tg::ProgressLine progress(o.epochs - first, (o.epochs - first) * loader.size());
  const auto start = std::chrono::steady_clock::now();
  double bpc = previous;
  for (std::size_t epoch = first + 1; epoch <= o.epochs; ++epoch) {
    const double loss = train_epoch(model, opt, loader, o.clip, epoch - first, progress);
    bpc = validation_bpc(model, valid_loader);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.clear();
    std::printf("epoch %2zu/%zu  train loss %.4f nats  validation %.4f bpc", epoch, o.epochs, loss, bpc);
    if (std::isfinite(previous)) std::printf(" (%+.4f vs previous epoch)", bpc - previous);
    std::printf("  %.1f s\n", seconds);
    std::fflush(stdout);
    previous = bpc;
    if (log != nullptr) {
      log->write({{"epoch", static_cast<double>(epoch)},
                  {"train_loss_nats", loss},
                  {"valid_bpc", bpc},
                  {"seconds", seconds}});
    }
    if (!o.save.empty()) save(o, model, opt, epoch, vocab, bpc);
  }
  if (!o.save.empty()) std::printf("checkpoint: %s\n", o.save.c_str());
  return bpc;
}

int run(const Options& o, const examples::PlotFlag& plot) {
  const std::string path = o.corpus.empty() ? tg::default_corpus_path() : o.corpus;
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr,
                 "07_char_lm: the text corpus is not at %s.\nRun scripts/fetch-text once (it needs "
                 "apt-get and network access), or pass --corpus FILE.\n",
                 path.c_str());
    return 2;
  }
  const std::string text = tg::load_text(path, o.max_bytes);
  const tg::CharVocab vocab(text);
  const auto [train_ids, valid_ids] = tg::contiguous_split(vocab.encode(text), o.valid_fraction);
  tg::Generator gen(o.seed);
  CharLM model(o, vocab.size(), gen);
  tg::Adam<float> opt(model.parameters(), o.lr);
  std::printf("corpus %s: %zu bytes, vocabulary of %zu characters; %zu for training, %zu for validation\n",
              path.c_str(), text.size(), vocab.size(), train_ids.size(), valid_ids.size());
  std::printf("model (%zu parameters):\n%s", model.num_parameters(), model.to_string().c_str());
  const double unigram = unigram_bpc(train_ids, valid_ids, vocab.size());
  std::printf("baselines on the validation text: uniform %.4f bpc, unigram baseline: %.4f bpc\n",
              std::log2(static_cast<double>(vocab.size())), unigram);

  std::size_t first = 0;
  double previous = NAN;
  if (!o.resume.empty()) {
    std::tie(first, previous) = resume(o, model, opt, vocab);
    std::printf("resumed from %s after epoch %zu (validation %.4f bpc)\n", o.resume.c_str(), first, previous);
  }
  double bpc = previous;
  if (first < o.epochs) {
    std::optional<tg::MetricsLog> log;
    if (!o.log.empty()) log.emplace(o.log);
    bpc = train(o, model, opt, vocab, train_ids, valid_ids, first, previous, log ? &*log : nullptr);
    if (log) std::printf("metrics written to %s\n", o.log.c_str());
    tg::PlotOptions plot_options;
    plot_options.title = "07_char_lm: " + model_flags(o);
    plot_options.ylabel = "train loss (nats) / validation bpc";
    plot.draw(o.log, plot_options);
  } else {
    std::printf("the checkpoint has already trained %zu of --epochs %zu: nothing to train\n", first,
                o.epochs);
  }
  std::printf("\nfinal validation bpc %.4f vs the unigram baseline's %.4f (%.1f%% of it)\n", bpc, unigram,
              100 * bpc / unigram);
  std::printf("\nsample (temperature %g, seed %llu):\n%s\n", o.temperature,
              static_cast<unsigned long long>(o.seed), sample(model, vocab, o).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 7: a character-level language model on the fortunes corpus"};
  app.option_defaults()->always_capture_default();
  app.add_option("--cell", o.cell, "recurrent cell")->check(CLI::IsMember({"lstm", "gru", "lnlstm", "rnn"}));
  app.add_option("--hidden", o.hidden, "hidden units of the cell")->check(CLI::Range(1, 100000));
  app.add_option("--embed", o.embed, "embedding dimension")->check(CLI::Range(1, 100000));
  app.add_option("--seq-len", o.seq_len, "characters per training window (BPTT length)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch-size", o.batch_size, "windows per step")->check(CLI::Range(1, 1 << 20));
  app.add_option("--epochs", o.epochs, "passes over the training text")->check(CLI::Range(1, 1000000));
  app.add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--clip", o.clip, "clip the gradient norm to this (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of the initialization, the shuffling and the sample");
  app.add_option("--max-bytes", o.max_bytes, "use the first this many bytes of the corpus (0 = all)");
  app.add_option("--corpus", o.corpus, "text file [default: scripts/fetch-text's fortunes.txt]");
  app.add_option("--temperature", o.temperature, "sampling temperature (lower: safer text)")
      ->check(CLI::Range(1e-3, 100.0));
  app.add_option("--sample-len", o.sample_len, "characters to sample after training")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--prompt", o.prompt, "text the sample starts from")->check([](const std::string& s) {
    return s.empty() ? std::string("the prompt must not be empty") : std::string();
  });
  app.add_option("--save", o.save, "write a checkpoint here after every epoch");
  app.add_option("--resume", o.resume, "continue the run saved in this checkpoint");
  app.add_option("--blas-threads", o.blas_threads,
                 "OpenBLAS threads per GEMM (this model's matrices are small; on busy cores a second "
                 "thread makes every GEMM wait for the slower one)")
      ->check(CLI::Range(1, 256));
  app.add_option("--log", o.log, "write per-epoch metrics to this CSV file");
  examples::PlotFlag plot;
  plot.add_to(app);
  app.add_flag("--quick", o.quick, "a small model on a small slice, for a smoke test (explicit flags win)");
  CLI11_PARSE(app, argc, argv);
  o.log = plot.csv_path(o.log, "07_char_lm");
  if (o.quick) {
    const auto unless_given = [&](const char* flag, auto& field, auto value) {
      if (app.count(flag) == 0) field = value;
    };
    unless_given("--hidden", o.hidden, std::size_t(64));
    unless_given("--embed", o.embed, std::size_t(16));
    unless_given("--seq-len", o.seq_len, std::size_t(32));
    unless_given("--batch-size", o.batch_size, std::size_t(16));
    unless_given("--epochs", o.epochs, std::size_t(2));
    unless_given("--lr", o.lr, 1e-2);
    unless_given("--max-bytes", o.max_bytes, std::size_t(30000));
    unless_given("--sample-len", o.sample_len, std::size_t(80));
  }

  try {
    tg::set_blas_threads(o.blas_threads);
    return run(o, plot);
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "07_char_lm: %s\n", e.what());
    return 2;
  }
}
