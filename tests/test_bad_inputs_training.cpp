// The bad-input catalogue for recurrent modules, optimizers, schedulers, gradient clipping,
// gradcheck, data loading, CSV, MNIST and checkpoint files. Ops, the tape and the other
// modules: test_bad_inputs_ops.cpp; the rest of the public API: test_bad_inputs_api.cpp.
//
// Every case asserts the exception's exact type, that its message names the offending values /
// keys / lines, and that nothing changed: parameters, grads, optimizer state, files on disk.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <typeinfo>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;

using tgtest::expect_error;

namespace {

// A module's parameters, their grads and its buffers, by name.
template <class T>
std::map<std::string, xt::xarray<T>> module_state(tg::Module<T>& m) {
  std::map<std::string, xt::xarray<T>> s = m.state_dict();
  for (auto& [name, p] : m.named_parameters()) s["grad:" + name] = p->grad();
  return s;
}

// Two parameters with non-zero grads, as after a backward pass.
struct TwoParams {
  tg::Parameter<float> a{tgtest::randn<float>({2, 3}, 1)};
  tg::Parameter<float> b{tgtest::randn<float>({3}, 2)};
  TwoParams() {
    a.mutable_grad() = tgtest::randn<float>({2, 3}, 3);
    b.mutable_grad() = tgtest::randn<float>({3}, 4);
  }
  std::vector<tg::Parameter<float>*> list() { return {&a, &b}; }
  std::vector<xt::xarray<float>> snapshot() const { return {a.value, a.grad(), b.value, b.grad()}; }
};

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// Every file under `dir` with its contents: "nothing changed on disk" is equality of these.
std::map<std::string, std::string> disk_state(const fs::path& dir) {
  std::map<std::string, std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) s[e.path().string()] = tgtest::read_bytes(e.path());
  }
  return s;
}

}  // namespace

// ---- recurrent modules --------------------------------------------------------------------------

TEST_CASE(
    "RNN input of rank 1 or 4 is a ShapeError naming the expected layout and the shape; nothing changes") {
  tg::Generator gen(1);
  tg::RNN<double> rnn(4, 3, tg::RNNOptions(), gen);
  const auto before = module_state(rnn);
  tg::Tape<double> t;
  auto x1 = t.input(tgtest::randn({4}, 1), true);
  auto x4 = t.input(tgtest::randn({2, 3, 5, 4}, 2), true);
  const std::size_t size = t.size();
  expect_error<tg::ShapeError>([&] { rnn(t, x1); },
                               {"RNN", "2-D (seq_len, input_size)", "got input of shape (4)"});
  expect_error<tg::ShapeError>([&] { rnn.run(t, x4); }, {"(seq_len, batch, input_size)", "(2, 3, 5, 4)"});
  tg::RNN<double> bf(4, 3, tg::RNNOptions().batch_first(true), gen);
  expect_error<tg::ShapeError>([&] { bf(t, x4); }, {"(batch, seq_len, input_size)"});
  CHECK(t.size() == size);
  CHECK((module_state(rnn) == before));
}

TEST_CASE(
    "RNN, LNRNN and BNRNN given 5 features for input_size 4 are ShapeErrors naming both; nothing changes") {
  tg::Generator gen(2);
  tg::RNN<double> rnn(4, 3, tg::RNNOptions(), gen);
  tg::LNRNN<double> ln(4, 3, tg::LNRNNOptions(), gen);
  tg::BNRNN<double> bn(4, 3, tg::BNRNNOptions(), gen);
  const auto before = std::make_tuple(module_state(rnn), module_state(ln), module_state(bn));
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({6, 2, 5}, 3), true);
  const std::size_t size = t.size();
  expect_error<tg::ShapeError>([&] { rnn(t, x); }, {"RNN", "input_size. Expected 4, got 5", "(6, 2, 5)"});
  expect_error<tg::ShapeError>([&] { ln(t, x); }, {"LNRNN", "Expected 4, got 5"});
  expect_error<tg::ShapeError>([&] { bn(t, x); }, {"BNRNN", "Expected 4, got 5"});
  CHECK(t.size() == size);
  CHECK((std::make_tuple(module_state(rnn), module_state(ln), module_state(bn)) == before));
}

TEST_CASE("an RNN h0 of the wrong shape is a ShapeError naming the expected and the actual h0 shape") {
  tg::Generator gen(3);
  tg::RNN<double> rnn(4, 3, tg::RNNOptions().num_layers(2), gen);
  tg::LNRNN<double> ln(4, 3, tg::LNRNNOptions(), gen);
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({6, 2, 4}, 1), true);
  auto h_one_layer = t.input(tgtest::randn({1, 2, 3}, 2), true);
  auto h_wrong_batch = t.input(tgtest::randn({2, 5, 3}, 3), true);
  auto x_unbatched = t.input(tgtest::randn({6, 4}, 4), true);
  tg::Tape<double> other;
  auto h_other = other.input(tgtest::randn({2, 2, 3}, 5));
  const std::size_t size = t.size();
  expect_error<tg::ShapeError>([&] { rnn.run(t, x, h_one_layer); },
                               {"RNN", "expected hidden size (2, 2, 3)", "h0 of shape (1, 2, 3)"});
  expect_error<tg::ShapeError>([&] { rnn.run(t, x, h_wrong_batch); }, {"(2, 2, 3)", "h0 of shape (2, 5, 3)"});
  expect_error<tg::ShapeError>([&] { rnn.run(t, x_unbatched, h_one_layer); },
                               {"expected hidden size (2, 3)", "unbatched"});
  expect_error<tg::ShapeError>([&] { ln.run(t, x, h_wrong_batch); },
                               {"LNRNN", "expected hidden size (1, 2, 3)"});
  expect_error<tg::StateError>([&] { rnn.run(t, x, h_other); }, {"RNN", "different tape"});
  CHECK(t.size() == size);
}

TEST_CASE("BNRNN training on a batch of one and any RNN on an empty sequence are refused; nothing changes") {
  tg::Generator gen(4);
  tg::BNRNN<double> bn(4, 3, tg::BNRNNOptions().max_length(8), gen);
  tg::RNN<double> rnn(4, 3, tg::RNNOptions(), gen);
  const auto before = module_state(bn);
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({6, 1, 4}, 1), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 2, 4}), true);
  const std::size_t size = t.size();
  expect_error<tg::StateError>([&] { bn(t, x); },
                               {"BNRNN", "more than 1 value per channel", "batch size 1", "(6, 1, 4)"});
  expect_error<tg::ValueError>([&] { rnn(t, empty); }, {"RNN", "sequence length larger than 0", "(0, 2, 4)"});
  CHECK(t.size() == size);
  CHECK((module_state(bn) == before));
}

// ---- optimizers ---------------------------------------------------------------------------------

TEST_CASE("an optimizer over an empty parameter list is a ValueError naming the optimizer") {
  std::vector<tg::Parameter<float>*> none;
  expect_error<tg::ValueError>([&] { tg::SGD<float>(none, 0.1); }, {"SGD", "empty parameter list"});
  expect_error<tg::ValueError>([&] { (void)tg::Adam<float>(none); }, {"Adam", "empty parameter list"});
  expect_error<tg::ValueError>([&] { (void)tg::AdamW<float>(none); }, {"AdamW", "empty parameter list"});
  expect_error<tg::ValueError>([&] { (void)tg::RMSprop<float>(none); }, {"RMSprop", "empty parameter list"});
}

TEST_CASE("a negative or NaN learning rate is a ValueError naming it, at construction and in set_lr") {
  TwoParams p;
  expect_error<tg::ValueError>([&] { tg::SGD<float>(p.list(), -0.1); }, {"SGD", "learning rate", "-0.1"});
  expect_error<tg::ValueError>([&] { tg::Adam<float>(p.list(), std::nan("")); },
                               {"Adam", "learning rate", "nan"});
  tg::SGD<float> sgd(p.list(), 0.5);
  expect_error<tg::ValueError>([&] { sgd.set_lr(-2); }, {"SGD", "learning rate", "-2"});
  CHECK(sgd.lr() == 0.5);
}

TEST_CASE("Adam with beta1 = 1 or a negative eps is a ValueError naming the parameter and value") {
  TwoParams p;
  tg::AdamOptions o;
  o.beta1 = 1.0;
  expect_error<tg::ValueError>([&] { tg::Adam<float>(p.list(), 1e-3, o); },
                               {"Adam", "beta parameter at index 0", "1.0"});
  tg::AdamWOptions e;
  e.eps = -1e-8;
  expect_error<tg::ValueError>([&] { tg::AdamW<float>(p.list(), 1e-3, e); }, {"AdamW", "epsilon", "-0.0"});
}

TEST_CASE("the same parameter twice in one optimizer is a ValueError naming its position") {
  TwoParams p;
  expect_error<tg::ValueError>(
      [&] {
        tg::SGD<float>({&p.a, &p.b, &p.a}, 0.1);
      },
      {"SGD", "parameter 2", "more than once"});
}

TEST_CASE("optimizer step with a grad of the wrong shape is a StateError, and no parameter moves") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.1);
  p.b.mutable_grad() = xt::ones<float>({4});
  const auto before = p.snapshot();
  expect_error<tg::StateError>([&] { sgd.step(); }, {"SGD", "parameter 1", "value (3)", "grad (4)"});
  CHECK((p.snapshot() == before));  // parameter 0 (fine) was not updated either
}

TEST_CASE(
    "optimizer load_state_dict with a missing lr, a foreign key or a mis-shaped state changes nothing") {
  TwoParams p;
  tg::Adam<float> adam(p.list(), 0.01);
  adam.step();
  const auto state = adam.state_dict();
  const auto before = p.snapshot();

  auto no_lr = state;
  no_lr.erase("lr");
  expect_error<tg::ValueError>([&] { adam.load_state_dict(no_lr); },
                               {"Adam.load_state_dict", "missing key \"lr\""});
  auto foreign = state;
  foreign["state.2.exp_avg"] = xt::zeros<float>({3});
  expect_error<tg::ValueError>([&] { adam.load_state_dict(foreign); },
                               {"unexpected key \"state.2.exp_avg\"", "2 parameters"});
  auto misshaped = state;
  misshaped["state.0.exp_avg"] = xt::zeros<float>({3, 2});
  misshaped["lr"] = xt::xarray<float>(0.5f);
  expect_error<tg::ShapeError>([&] { adam.load_state_dict(misshaped); },
                               {"\"state.0.exp_avg\"", "shape (3, 2)", "expected (2, 3)"});
  auto negative = state;
  negative["lr"] = xt::xarray<float>(-1.0f);
  expect_error<tg::ValueError>([&] { adam.load_state_dict(negative); }, {"learning rate", "-1"});

  CHECK((adam.state_dict() == state));
  CHECK(adam.lr() == Approx(0.01));
  CHECK((p.snapshot() == before));
}

TEST_CASE("optimizer load_state_dict with an lr that is not one number is a ShapeError naming its shape") {
  // Regression: "lr" was read with operator() whatever its shape: an empty array was read past
  // its end (ASan: heap-buffer-overflow) and a (3) array silently used its first element.
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.25, tg::SGDOptions{0.9});
  sgd.step();
  const auto state = sgd.state_dict();
  for (const auto& shape : {tg::Shape{0}, tg::Shape{3}}) {
    auto bad = state;
    bad["lr"] = xt::ones<float>(shape);
    expect_error<tg::ShapeError>([&] { sgd.load_state_dict(bad); },
                                 {"SGD.load_state_dict", "\"lr\"", tg::shape_str(shape)});
  }
  CHECK((sgd.state_dict() == state));
}

// ---- schedulers, clipping, gradcheck ------------------------------------------------------------

TEST_CASE(
    "a scheduler with step size 0, T_max -1 or a start factor of 0 is a ValueError, and the lr is unchanged") {
  TwoParams p;
  tg::SGD<float> sgd(p.list(), 0.5);
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, 0); }, {"StepLR", "step_size", "0"});
  expect_error<tg::ValueError>([&] { tg::StepLR<float>(sgd, -3, 0.5); }, {"StepLR", "-3"});
  expect_error<tg::ValueError>([&] { tg::CosineAnnealingLR<float>(sgd, -1); },
                               {"CosineAnnealingLR", "T_max", "-1"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 0.0); }, {"LinearLR", "start_factor", "0.0"});
  expect_error<tg::ValueError>([&] { tg::LinearLR<float>(sgd, 0.5, 1.0, 0); },
                               {"LinearLR", "total_iters", "0"});
  CHECK(sgd.lr() == 0.5);
}

TEST_CASE(
    "clip_grad_norm of a NaN or infinite gradient with error_if_nonfinite is a ValueError; grads untouched") {
  TwoParams p;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    p.b.mutable_grad()(1) = bad;
    const auto before = p.snapshot();
    expect_error<tg::ValueError>([&] { tg::clip_grad_norm(p.list(), 1.0, 2.0, true); },
                                 {"clip_grad_norm", "non-finite", "2 parameters", "error_if_nonfinite"});
    const auto after = p.snapshot();
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {  // NaN != NaN: compare the bits
      CHECK(std::memcmp(after[i].data(), before[i].data(), after[i].size() * sizeof(float)) == 0);
    }
  }
  expect_error<tg::ValueError>([&] { tg::clip_grad_norm(p.list(), 1.0, 0.0); }, {"norm_type", "0.0"});
}

TEST_CASE("gradcheck with a wrt list of the wrong length is a ValueError naming both counts") {
  int calls = 0;
  auto f = [&](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
    ++calls;
    return v[0] * v[1];
  };
  tg::GradcheckOptions o;
  o.wrt = {true};
  expect_error<tg::ValueError>(
      [&] {
        tg::gradcheck(f, {tgtest::randn({3}, 1), tgtest::randn({3}, 2)}, o);
      },
      {"gradcheck", "wrt has 1 entries", "2 inputs"});
  expect_error<tg::ValueError>([&] { tg::gradcheck(f, {}); }, {"gradcheck", "no inputs"});
  CHECK(calls == 0);  // refused before evaluating anything
}

// ---- datasets and loaders -----------------------------------------------------------------------

TEST_CASE("a DataLoader with batch size 0 or over an empty dataset is a ValueError naming it") {
  tg::Dataset<float> data(tgtest::randn<float>({5, 2}, 1), std::vector<std::int64_t>{0, 1, 0, 1, 1});
  expect_error<tg::ValueError>([&] { tg::DataLoader<float>(data, 0); }, {"DataLoader", "batch_size", "0"});
  tg::Dataset<float> empty(xt::xarray<float>::from_shape({0, 2}));
  expect_error<tg::ValueError>([&] { tg::DataLoader<float>(empty, 4); }, {"DataLoader", "empty", "(0, 2)"});
}

TEST_CASE("a Dataset with 3 labels for 4 examples, or a negative label, names the counts and the label") {
  expect_error<tg::ShapeError>(
      [] {
        tg::Dataset<float>(xt::zeros<float>({4, 2}), std::vector<std::int64_t>{0, 1, 2});
      },
      {"Dataset", "(4, 2)", "3"});
  expect_error<tg::ValueError>(
      [] {
        tg::Dataset<float>(xt::zeros<float>({2, 2}), std::vector<std::int64_t>{0, -1});
      },
      {"Dataset", "label 1", "-1"});
  tg::Dataset<float> d(xt::zeros<float>({3, 2}));
  expect_error<tg::ValueError>([&] { d.subset({0, 3}); }, {"subset", "index 3", "position 1"});
  expect_error<tg::ValueError>([&] { tg::train_test_split(d, 1.0, 0); },
                               {"train_test_split", "test_fraction", "1.0"});
}

// ---- CSV --------------------------------------------------------------------------------------------

TEST_CASE("a CSV row with too few cells is an IoError naming its line, its cell count and the header's") {
  expect_error<tg::IoError>([] { tg::parse_csv<float>("a,b,c\n1,2,3\n\n4,5\n", {}, "ragged.csv"); },
                            {"ragged.csv", "line 4 has 2 cells", "line 1 (the header) has 3"});
  tg::CsvOptions no_header;
  no_header.header = false;
  expect_error<tg::IoError>([&] { tg::parse_csv<float>("1,2\n3,4,5\n", no_header, "r2"); },
                            {"line 2 has 3 cells", "line 1 has 2"});
}

TEST_CASE(
    "a non-numeric or non-finite CSV cell is an IoError naming the line, column, column name and text") {
  expect_error<tg::IoError>([] { tg::parse_csv<float>("x,petal_len\n1,2\n3,abc\n", {}, "iris.csv"); },
                            {"iris.csv line 3, column 2 (\"petal_len\")", "\"abc\""});
  expect_error<tg::IoError>([] { tg::parse_csv<float>("x\nnan\n", {}, "s"); }, {"line 2", "\"nan\""});
  expect_error<tg::IoError>([] { tg::parse_csv<float>("x\n1e39\n", {}, "s"); },
                            {"\"1e39\"", "not a finite float"});
  expect_error<tg::IoError>([] { tg::parse_csv<float>("x,y\n1,\n", {}, "s"); }, {"column 2 (\"y\")", "\"\""});
}

TEST_CASE(
    "a CSV label that is not a non-negative integer, or a missing label column, is an IoError naming it") {
  tg::CsvOptions o;
  o.label_column = "species";
  expect_error<tg::IoError>([&] { tg::parse_csv<float>("x,species\n1,2.5\n", o, "s"); },
                            {"line 2, column 2 (\"species\")", "label \"2.5\""});
  expect_error<tg::IoError>([&] { tg::parse_csv<float>("x,y\n1,2\n", o, "s"); },
                            {"label column \"species\" is not in the header", "\"x\", \"y\""});
}

TEST_CASE("an empty CSV, one with only a header, or a missing file is an IoError naming the source") {
  expect_error<tg::IoError>([] { tg::parse_csv<float>("\n\n", {}, "blank.csv"); }, {"blank.csv is empty"});
  expect_error<tg::IoError>([] { tg::parse_csv<float>("a,b\n", {}, "h.csv"); }, {"h.csv", "no data rows"});
  expect_error<tg::IoError>([] { tg::load_csv<float>("/nonexistent/tapegrad/x.csv"); },
                            {"cannot open", "/nonexistent/tapegrad/x.csv"});
}

// ---- MNIST JSON -------------------------------------------------------------------------------------

TEST_CASE(
    "MNIST digit files with a pixel outside [0, 1], a bad length or no data array are IoErrors naming the problem") {
  std::string ok = "{\"data\": [";
  for (std::size_t i = 0; i < tg::kMnistPixels; ++i) ok += (i ? ",0.5" : "0.5");
  std::string high = ok, shortened = ok;
  high.replace(high.find("0.5", 600), 3, "1.5");
  shortened.resize(shortened.size() - 4);
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>(high + "]}", 0, "3.json"); },
                            {"3.json", "= 1.5 is outside [0, 1]", "data["});
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>(shortened + "]}", 0, "3.json"); },
                            {"783 values", "multiple of 784"});
  expect_error<tg::IoError>([] { tg::parse_mnist_digits<float>("{\"pixels\": []}", 0, "7.json"); },
                            {"7.json", "no \"data\""});
  expect_error<tg::IoError>([] { tg::load_mnist<float>("/nonexistent/tapegrad-mnist"); },
                            {"load_mnist", "/nonexistent/tapegrad-mnist/0.json"});
}

// ---- checkpoints (safetensors) ----------------------------------------------------------------------

TEST_CASE(
    "a checkpoint truncated at every byte offset is an IoError naming the sizes, and the model is unchanged") {
  tg::Generator gen(5);
  tg::Linear<float> model(3, 2, {}, gen);
  tg::TensorMap<float> tensors;
  for (auto& [k, v] : model.state_dict()) tensors[k] = v + 1.0f;
  const std::string full = tg::safetensors_to_bytes<float>(tensors, {{"step", "7"}});
  REQUIRE(tg::load_safetensors_from_bytes<float>(full).tensors.size() == 2);
  const auto before = model.state_dict();
  std::uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= std::uint64_t(static_cast<unsigned char>(full[i])) << (8 * i);
  const fs::path dir = tgtest::scratch_dir("bad_inputs_training", "truncated");
  for (std::size_t k = 0; k < full.size(); ++k) {
    INFO("truncated to " << k << " of " << full.size() << " bytes");
    const std::string cut = full.substr(0, k);
    std::string number;  // what the message must mention: the size it found
    if (k < 8)
      number = std::to_string(k) + " bytes";
    else if (k < 8 + header_len)
      number = "file size " + std::to_string(k);
    else
      number = "data section of " + std::to_string(k - 8 - header_len) + " bytes";
    expect_error<tg::IoError>(
        [&] { model.load_state_dict(tg::load_safetensors_from_bytes<float>(cut).tensors); },
        {"load_safetensors", number});
    if (k % 16 == 0) {  // through a real file too: the path is named
      const fs::path file = dir / "cut.safetensors";
      write_bytes(file, cut);
      expect_error<tg::IoError>([&] { tg::load_safetensors<float>(file.string()); }, {file.string(), number});
    }
  }
  CHECK((model.state_dict() == before));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint whose header length exceeds the file is an IoError naming both sizes") {
  std::string bytes = tgtest::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                                std::string(4, '\0'));
  bytes[0] = static_cast<char>(0xF0);  // header length 240 + ..., the file is 68 bytes
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(bytes); },
                            {"header length 240", "60 bytes after the length field", "file size 68"});
  std::string huge(8, '\xff');
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(huge + "{}"); },
                            {"header length 18446744073709551615", "exceeds the limit"});
}

TEST_CASE(
    "checkpoint tensors with overlapping or out-of-range data_offsets are IoErrors naming the tensors and offsets") {
  const std::string overlap = tgtest::safetensors_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(overlap); },
                            {"'a' [0, 8)", "'b' [4, 12)", "overlap"});
  const std::string past_end = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", std::string(8, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(past_end); },
                            {"tensor 'w'", "[0, 12]", "past the data section of 8 bytes"});
  const std::string wrong_span = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,12]}})", std::string(12, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<double>(wrong_span); },
                            {"tensor 'w'", "span 12 bytes", "(2) of F64 needs 2 x 8 = 16 bytes"});
  const std::string gap = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(gap); },
                            {"bytes [0, 4)", "belong to no tensor"});
}

TEST_CASE("a checkpoint with an unknown or unsupported dtype is an IoError naming the tensor and the dtype") {
  const std::string f17 = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(f17); },
                            {"tensor 'w'", "unknown dtype F17", "F32 and F64"});
  const std::string bf16 = tgtest::safetensors_bytes(
      R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0'));
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(bf16); },
                            {"tensor 'w'", "dtype BF16 is not supported"});
  const std::string not_json = tgtest::safetensors_bytes("{\"w\": [", "");
  expect_error<tg::IoError>([&] { tg::load_safetensors_from_bytes<float>(not_json); }, {"not valid JSON"});
}

TEST_CASE(
    "saving a checkpoint into a missing directory or under a reserved name is an error and leaves the disk as it was") {
  const fs::path dir = tgtest::scratch_dir("bad_inputs_training", "save");
  const fs::path file = dir / "model.safetensors";
  tg::TensorMap<float> good{{"w", tgtest::randn<float>({2, 2}, 1)}};
  tg::save_safetensors<float>(file.string(), good);
  const auto disk = disk_state(dir);
  tg::TensorMap<float> reserved{{"__metadata__", xt::zeros<float>({1})}};
  expect_error<tg::ValueError>([&] { tg::save_safetensors<float>(file.string(), reserved); },
                               {"\"__metadata__\" is reserved"});
  const fs::path missing = dir / "no" / "such" / "dir" / "m.safetensors";
  expect_error<tg::IoError>([&] { tg::save_safetensors<float>(missing.string(), good); }, {missing.string()});
  expect_error<tg::IoError>([&] { tg::write_file_atomic(file.string(), "new bytes", 3); },
                            {"3 of 9 bytes", file.string()});
  CHECK((disk_state(dir) == disk));  // no temporary file left, the old file intact
  fs::remove_all(dir);
}
