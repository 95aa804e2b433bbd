// Hostile files and names for every function that reads or writes a file (safetensors,
// checkpoints, CSV, MNIST, the metrics log) and for Optimizer::load_state_dict: only tapegrad
// errors come out, they name the path or the key, and nothing changes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using tgtest::check_bitwise_same;
using tgtest::expect_error;
using tgtest::train_steps;

namespace {

std::shared_ptr<tg::Sequential<float>> small_net(std::uint64_t seed) {
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<float>>();
  net->emplace_back<tg::Linear<float>>(3, 4, tg::LinearOptions(), gen);
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(4, 2, tg::LinearOptions(), gen);
  return net;
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

tg::TensorMap<float> one_tensor() { return {{"w", xt::xarray<float>{1.0f, 2.0f}}}; }

// Every public function that reads a file, called on `path`.
std::vector<std::pair<std::string, std::function<void()>>> readers(const std::string& path) {
  return {
      {"load_safetensors", [=] { tg::load_safetensors<float>(path); }},
      {"read_checkpoint", [=] { tg::read_checkpoint<float>(path); }},
      {"load_checkpoint",
       [=] {
         auto net = small_net(1);
         tg::load_checkpoint(path, *net);
       }},
      {"load_csv", [=] { tg::load_csv<float>(path); }},
  };
}

}  // namespace

TEST_CASE("every function that opens a file says so when the path is a directory") {
  const auto dir = tgtest::scratch_dir("io_hostile", "directory");
  const std::string d = dir.string();
  for (const auto& [name, call] : readers(d)) {
    INFO(name);
    expect_error<tg::IoError>(call, {d, "is a directory"});
  }
  // load_mnist reads <dir>/0.json ... 9.json: one of them a directory.
  fs::create_directories(dir / "mnist" / "0.json");
  expect_error<tg::IoError>([&] { tg::load_mnist<float>((dir / "mnist").string()); },
                            {"load_mnist", (dir / "mnist" / "0.json").string(), "is a directory"});
  // Writers: the directory is named and stays what it was (empty, not replaced).
  expect_error<tg::IoError>([&] { tg::save_safetensors(d, one_tensor()); }, {d, "is a directory"});
  auto net = small_net(1);
  expect_error<tg::IoError>([&] { tg::save_checkpoint(d + "/mnist", *net); },
                            {"save_checkpoint", d + "/mnist", "is a directory"});
  expect_error<tg::IoError>([&] { tg::MetricsLog log(d); }, {"MetricsLog", d, "is a directory"});
  CHECK(fs::is_directory(dir / "mnist" / "0.json"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("a FIFO or a device given as a file is refused at once, without reading or waiting") {
  // Each call would block forever in open() or read() if it treated the FIFO as a file: no
  // process ever writes to it. The library opens non-blocking and checks the type first.
  const auto dir = tgtest::scratch_dir("io_hostile", "fifo");
  const std::string fifo = (dir / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const auto& [name, call] : readers(fifo)) {
    INFO(name);
    expect_error<tg::IoError>(call, {fifo, "is a FIFO"});
  }
  expect_error<tg::IoError>([&] { tg::save_safetensors(fifo, one_tensor()); }, {fifo, "is a FIFO"});
  expect_error<tg::IoError>([&] { tg::MetricsLog log(fifo); }, {fifo, "is a FIFO"});
  CHECK(fs::is_fifo(fifo));
  if (fs::exists("/dev/null")) {
    expect_error<tg::IoError>([] { tg::load_safetensors<float>("/dev/null"); },
                              {"/dev/null", "is a character device"});
    expect_error<tg::IoError>([] { tg::load_csv<float>("/dev/zero"); }, {"/dev/zero", "character device"});
  }
  fs::remove_all(dir);
}

TEST_CASE("paths that cannot name a file are IoErrors, not a different file or another exception") {
  const auto dir = tgtest::scratch_dir("io_hostile", "paths");
  const std::string real = (dir / "a.safetensors").string();
  tg::save_safetensors(real, one_tensor());
  // A NUL byte would cut the path at the system call: "a.safetensors\0junk" must not load a.safetensors.
  const std::string with_nul = real + std::string(1, '\0') + "junk";
  for (const auto& [name, call] : readers(with_nul)) {
    INFO(name);
    expect_error<tg::IoError>(call, {"NUL byte", real});
  }
  expect_error<tg::IoError>([&] { tg::save_safetensors(with_nul, one_tensor()); }, {"NUL byte"});
  for (const auto& [name, call] : readers("")) {
    INFO(name);
    expect_error<tg::IoError>(call, {"the path is empty"});
  }
  expect_error<tg::IoError>([&] { tg::MetricsLog log(""); }, {"the path is empty"});
  // A file used as a directory, and a name longer than the system allows.
  const std::string through_file = real + "/x.csv";
  expect_error<tg::IoError>([&] { tg::load_csv<float>(through_file); }, {through_file, "Not a directory"});
  const std::string too_long = (dir / std::string(5000, 'x')).string();
  expect_error<tg::IoError>([&] { tg::load_safetensors<float>(too_long); }, {"cannot open", "too long"});
  expect_error<tg::IoError>([&] { tg::save_safetensors(too_long, one_tensor()); }, {"too long"});
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("saving over a file keeps its permission bits; a new file gets the umask's") {
  const auto dir = tgtest::scratch_dir("io_hostile", "mode");
  const fs::path st = dir / "t.safetensors";
  tg::save_safetensors(st.string(), one_tensor());
  ::chmod(st.c_str(), 0600);
  tg::save_safetensors(st.string(), one_tensor());
  CHECK(mode_of(st) == 0600);
  ::chmod(st.c_str(), 0640);
  tg::write_file_atomic(st.string(), "bytes");
  CHECK(mode_of(st) == 0640);

  const fs::path ck = dir / "run.ckpt";
  auto net = small_net(2);
  tg::Adam<float> opt(net->parameters(), 0.01);
  tg::save_checkpoint(ck.string(), *net, &opt, 1);
  ::chmod(ck.c_str(), 0600);
  tg::save_checkpoint(ck.string(), *net, &opt, 2);
  CHECK(mode_of(ck) == 0600);
  CHECK(tg::read_checkpoint<float>(ck.string()).step == 2);

  const mode_t old_mask = ::umask(022);
  tg::save_safetensors((dir / "new.safetensors").string(), one_tensor());
  ::umask(old_mask);
  CHECK(mode_of(dir / "new.safetensors") == 0644);
  fs::remove_all(dir);
}

TEST_CASE("tensor names and metadata that are not UTF-8 are ValueErrors on save, and the file is untouched") {
  const std::vector<std::string> bad = {
      "\xff",              // never valid
      "ab\xc3",            // truncated two-byte sequence
      "\xc0\x80",          // overlong NUL
      "\xe0\x80\xaf",      // overlong '/'
      "\xed\xa0\x80",      // UTF-16 surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "x\x80y",            // stray continuation byte
  };
  const auto dir = tgtest::scratch_dir("io_hostile", "utf8_save");
  const std::string path = (dir / "f.safetensors").string();
  const std::string ck = (dir / "c.ckpt").string();
  tg::save_safetensors(path, one_tensor());
  auto net = small_net(3);
  tg::save_checkpoint(ck, *net, nullptr, 5);
  const std::string before = tgtest::read_bytes(path), ck_before = tgtest::read_bytes(ck);
  for (const std::string& s : bad) {
    INFO("string: " << s);
    expect_error<tg::ValueError>(
        [&] {
          tg::safetensors_to_bytes<float>({{s, xt::xarray<float>{1.0f}}});
        },
        {"tensor name", "not valid UTF-8"});
    expect_error<tg::ValueError>(
        [&] {
          tg::save_safetensors<float>(path, {{s, xt::xarray<float>{1.0f}}});
        },
        {"not valid UTF-8"});
    expect_error<tg::ValueError>(
        [&] {
          tg::save_safetensors<float>(path, one_tensor(), {{s, "v"}});
        },
        {"metadata key", "not valid UTF-8"});
    expect_error<tg::ValueError>(
        [&] {
          tg::save_safetensors<float>(path, one_tensor(), {{"k", s}});
        },
        {"metadata value of 'k'", "not valid UTF-8"});
    expect_error<tg::ValueError>(
        [&] {
          tg::save_checkpoint(ck, *net, nullptr, 6, {{"note", s}});
        },
        {"save_checkpoint", ck, "not valid UTF-8"});
    expect_error<tg::ValueError>(
        [&] {
          tg::save_checkpoint(ck, *net, nullptr, 6, {{s, "x"}});
        },
        {"save_checkpoint", "not valid UTF-8"});
  }
  CHECK(tgtest::read_bytes(path) == before);
  CHECK(tgtest::read_bytes(ck) == ck_before);
  // Well-formed multi-byte UTF-8 round-trips.
  const std::string pi = "\xcf\x80", smile = "\xf0\x9f\x98\x80";
  tg::save_safetensors<float>(path, {{pi, xt::xarray<float>{1.0f}}}, {{smile, pi}});
  const auto back = tg::load_safetensors<float>(path);
  CHECK(back.tensors.count(pi) == 1);
  CHECK(back.metadata.at(smile) == pi);
  fs::remove_all(dir);
}

TEST_CASE("a header that is not UTF-8 is an IoError on load, and a checkpoint load changes nothing") {
  const std::string data(4, '\0');
  for (const std::string& header :
       {std::string("{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),
        std::string("{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")}) {
    expect_error<tg::IoError>(
        [&] { tg::load_safetensors_from_bytes<float>(tgtest::safetensors_bytes(header, data)); },
        {"not valid JSON"});
  }
  const auto dir = tgtest::scratch_dir("io_hostile", "utf8_load");
  const std::string path = (dir / "c.ckpt").string();
  tg::write_file_atomic(
      path, tgtest::safetensors_bytes("{\"__metadata__\":{\"format\":\"tapegrad-checkpoint\",\"version\":"
                                      "\"1\",\"step\":\"1\",\"x\":\"\xff\"}}",
                                      ""));
  auto net = small_net(4);
  const auto before = net->state_dict();
  expect_error<tg::IoError>([&] { tg::load_checkpoint(path, *net); }, {path, "not valid JSON"});
  check_bitwise_same(before, net->state_dict());
  fs::remove_all(dir);
}

TEST_CASE("a name that appears twice in a safetensors header is reported as a duplicate") {
  auto load = [](const std::string& header, std::size_t data_len) {
    return tg::load_safetensors_from_bytes<float>(
        tgtest::safetensors_bytes(header, std::string(data_len, '\0')));
  };
  const std::string w = R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string w2 = R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
  expect_error<tg::IoError>([&] { load("{" + w + "," + w2 + "}", 8); }, {"duplicate tensor name 'w'"});
  expect_error<tg::IoError>([&] { load("{" + w + "," + w + "}", 4); }, {"duplicate tensor name 'w'"});
  expect_error<tg::IoError>([&] { load(R"({"__metadata__":{"k":"a","k":"b"}})", 0); },
                            {"__metadata__ has duplicate key 'k'"});
  expect_error<tg::IoError>([&] { load(R"({"__metadata__":{},"__metadata__":{}})", 0); },
                            {"__metadata__ appears twice"});
  expect_error<tg::IoError>(
      [&] { load(R"({"w":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", 4); },
      {"tensor 'w'", "\"dtype\" twice"});
}

TEST_CASE("numbers out of range and nesting anywhere in a header are IoErrors naming the place") {
  auto load = [](const std::string& header, std::size_t data_len = 4) {
    return tg::load_safetensors_from_bytes<float>(
        tgtest::safetensors_bytes(header, std::string(data_len, '\0')));
  };
  auto entry = [](const std::string& shape, const std::string& offsets) {
    return R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
  };
  expect_error<tg::IoError>([&] { load(entry("[18446744073709551616]", "[0,4]")); },
                            {"shape[0] must be a non-negative integer", "18446744073709551616"});
  expect_error<tg::IoError>([&] { load(entry("[1]", "[0,1e400]")); },
                            {"not valid JSON", "number overflow", "1e400"});
  expect_error<tg::IoError>([&] { load(entry("[1]", "[-4,0]")); }, {"data_offsets[0]", "-4"});
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error<tg::IoError>([&] { load(entry("[" + deep + "]", "[0,4]")); },
                            {"shape[0] must be a non-negative integer; got an array of 1 elements"});
  expect_error<tg::IoError>([&] { load(entry("[1]", deep)); },
                            {"data_offsets must be [begin, end]; got an array of 1 elements"});
  expect_error<tg::IoError>([&] { load(R"({"__metadata__":{"k":)" + deep + "}}", 0); },
                            {"__metadata__['k'] must be a string; got an array of 1 elements"});
  // An unknown member of an entry is skipped whatever it holds, in constant memory.
  const auto ok = load(R"({"w":{"extra":)" + deep + R"(,"dtype":"F32","shape":[1],"data_offsets":[0,4]}})");
  CHECK(ok.tensors.at("w").shape() == tg::Shape{1});
  // MNIST's reader streams too: deep nesting is a message, not a stack overflow.
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>("{\"data\":" + deep + "}", 0, "d.json"); },
                            {"d.json", "data[0] is an array"});
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>("{\"x\":" + deep + "}", 0, "d.json"); },
                            {"no \"data\""});
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>("{\"data\":[1e400]}", 0, "d.json"); },
                            {"d.json", "number overflow", "1e400"});
  expect_error<tg::IoError>([&] { tg::parse_mnist_digits<float>("{\"data\":[\"\xff\"]}", 0, "d.json"); },
                            {"malformed JSON"});
}

TEST_CASE(
    "Optimizer::load_state_dict takes only keys of the documented grammar, and a refusal changes nothing") {
  auto net = small_net(5);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 1, 11);
  const auto good = opt.state_dict();
  REQUIRE(good.count("state.0.exp_avg"));
  const auto& v = good.at("state.0.exp_avg");
  for (const std::string key :
       {"state.0junk.exp_avg", "state.+0.exp_avg", "state.-0.exp_avg", "state. 0.exp_avg", "state.00.exp_avg",
        "state.0x0.exp_avg", "state.4.exp_avg", "state.99999999999999999999999.exp_avg", "state..exp_avg",
        "state.0.", "state.0", "state.0.exp avg", "state.0.exp.avg", "state.0.\xff", "STATE.0.exp_avg", "lr2",
        "state.1e0.exp_avg"}) {
    INFO("key: " << key);
    tg::StateDict<float> sd = good;
    sd.erase("state.0.exp_avg");
    sd[key] = v;
    expect_error<tg::ValueError>([&] { opt.load_state_dict(sd); },
                                 {"unexpected key \"" + key + "\"", "4 parameters"});
    check_bitwise_same(good, opt.state_dict());
    CHECK(opt.lr() == 0.01);
  }
  // Indices with more than one digit parse: twelve parameters, state for the last.
  std::vector<std::unique_ptr<tg::Parameter<float>>> params;
  std::vector<tg::Parameter<float>*> ptrs;
  for (int i = 0; i < 12; ++i) {
    params.push_back(std::make_unique<tg::Parameter<float>>(xt::xarray<float>{1.0f}));
    ptrs.push_back(params.back().get());
  }
  tg::SGD<float> sgd(ptrs, 0.1, tg::SGDOptions{0.9});
  sgd.load_state_dict(
      {{"lr", xt::xarray<float>(0.5f)}, {"state.11.momentum_buffer", xt::xarray<float>{2.0f}}});
  CHECK(sgd.state_dict().at("state.11.momentum_buffer")(0) == 2.0f);
  expect_error<tg::ValueError>(
      [&] {
        sgd.load_state_dict(
            {{"lr", xt::xarray<float>(0.5f)}, {"state.12.momentum_buffer", xt::xarray<float>{2.0f}}});
      },
      {"state.12.momentum_buffer", "12 parameters"});
}

TEST_CASE("a checkpoint with a malformed optimizer key leaves model and optimizer unchanged") {
  const auto dir = tgtest::scratch_dir("io_hostile", "ckpt_key");
  const std::string path = (dir / "c.ckpt").string();
  auto src = small_net(6);
  tg::Adam<float> src_opt(src->parameters(), 0.02);
  train_steps(*src, src_opt, 1, 11);
  tg::TensorMap<float> tensors;
  for (auto& [k, val] : src->state_dict()) tensors["model." + k] = val;
  for (auto& [k, val] : src_opt.state_dict())
    tensors["optim." + (k == "state.1.exp_avg" ? "state.1junk.exp_avg" : k)] = val;
  tg::save_safetensors(
      path, tensors,
      {{"format", "tapegrad-checkpoint"}, {"version", "1"}, {"step", "3"}, {"optimizer", "Adam"}});
  auto net = small_net(7);
  tg::Adam<float> opt(net->parameters(), 0.5);
  train_steps(*net, opt, 1, 11);
  const auto model_before = net->state_dict();
  const auto opt_before = opt.state_dict();
  expect_error<tg::ValueError>([&] { tg::load_checkpoint(path, *net, &opt); },
                               {path, "unexpected key \"state.1junk.exp_avg\""});
  check_bitwise_same(model_before, net->state_dict());
  check_bitwise_same(opt_before, opt.state_dict());
  fs::remove_all(dir);
}

TEST_CASE("hostile bytes into the parsers raise only tapegrad errors") {
  const std::string deep = std::string(5000, '{');
  const std::vector<std::string> inputs = {
      "",
      "\xff\xfe",
      deep,
      "{\"a\":1e999999}",
      "[-99999999999999999999999999]",
      "{\"data\":[0.5,",
      "{\"\xc0\x80\":1}",
      std::string(8, '\xff') + "{}",
      "\x02\0\0\0\0\0\0\0{}",
      tgtest::safetensors_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e3],\"data_offsets\":[0,4000]}}",
                                std::string(4000, 'x')),
  };
  for (const std::string& in : inputs) {
    INFO("input of " << in.size() << " bytes");
    for (const auto& call : std::vector<std::function<void()>>{
             [&] { tg::load_safetensors_from_bytes<double>(in); },
             [&] { tg::parse_mnist_digits<float>(in, 0, "x"); },
             [&] { tg::parse_csv<float>(in); },
         }) {
      try {
        call();
      } catch (const tg::Error&) {
      } catch (const std::exception& e) {
        FAIL("a non-tapegrad exception escaped: " << e.what());
      }
    }
  }
}
