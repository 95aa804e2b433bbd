// The README's code examples, compiled and run as the README writes them: each ```cpp block is
// extracted at configure time (tests/readme_blocks.cmake) into <build>/tests/readme/NAME.inc and
// #included below, inside a test case that provides what the block takes as given (a data
// loader; for the MPI block, a model factory) and checks what it did. Editing a block in the
// README changes what is compiled here.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "support.hpp"

namespace {

// Captures std::cout for the lifetime of the object.
class CoutCapture {
 public:
  CoutCapture() : saved_(std::cout.rdbuf(out_.rdbuf())) {}
  ~CoutCapture() { std::cout.rdbuf(saved_); }
  CoutCapture(const CoutCapture&) = delete;
  CoutCapture& operator=(const CoutCapture&) = delete;
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::streambuf* saved_;
};

std::string readme_block(const std::string& name) {
  std::ifstream in(std::string(TAPEGRAD_BINARY_DIR) + "/tests/readme/" + name + ".inc");
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Makes `dir` the working directory for the lifetime of the object (the README writes
// run.safetensors next to the program).
class WorkingDir {
 public:
  explicit WorkingDir(const std::filesystem::path& dir) : saved_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~WorkingDir() { std::filesystem::current_path(saved_); }
  WorkingDir(const WorkingDir&) = delete;
  WorkingDir& operator=(const WorkingDir&) = delete;

 private:
  std::filesystem::path saved_;
};

}  // namespace

TEST_CASE("README: gradients on a tape, and the table it prints") {
  CoutCapture cout;
  {
#include "gradients.inc"
    CHECK(dzdx == Approx(3.0 + std::exp(2.0) / 3.0));
    // The README shows GCC's order (the right operand of + first); clang records x * y first.
    const bool right_first = t.info(2).op == "exp";
#if defined(__GNUC__) && !defined(__clang__)
    CHECK(right_first);
#endif
    std::string expected = readme_block("gradients_output");
    if (!right_first) {
      const std::string gcc_rows =
          "    2        exp                (1)              0              yes            [7.389]  [0.3333]\n"
          "    3        div                (1)              2,1            yes            [2.463]  [1]\n"
          "    4        mul                (1)              0,1            yes            [6]      [1]\n"
          "    5  z     add                (1)              4,3            yes            [8.463]  [1]\n";
      const std::string clang_rows =
          "    2        mul                (1)              0,1            yes            [6]      [1]\n"
          "    3        exp                (1)              0              yes            [7.389]  [0.3333]\n"
          "    4        div                (1)              3,1            yes            [2.463]  [1]\n"
          "    5  z     add                (1)              2,4            yes            [8.463]  [1]\n";
      const auto at = expected.find(gcc_rows);
      REQUIRE(at != std::string::npos);
      expected.replace(at, gcc_rows.size(), clang_rows);
    }
    CHECK(cout.str() == expected);
  }
}

namespace {
namespace tg = tapegrad;

// What the README's training blocks take as given: a DataLoader named `loader`.
struct ReadmeData {
  tg::Dataset<float> data = tg::moons<float>(128, 0.1, 1);
  tg::DataLoader<float> loader{data, 16, true, 2};
};

float full_loss(tg::Module<float>& net, const tg::Dataset<float>& data) {
  tg::NoGradGuard no_grad;
  tg::Tape<float> t;
  return tg::cross_entropy(net(t, t.input(data.inputs())), data.labels()).item();
}

// The README's model, built again untrained (same Generator seed, same layers).
float untrained_loss(const tg::Dataset<float>& data) {
  tg::Generator gen(0);
  tg::Sequential<float> net;
  auto& fc1 = net.emplace_back<tg::Linear<float>>(2, 64, gen);
  net.emplace_back<tg::LayerNorm<float>>(64);
  net.emplace_back<tg::Tanh<float>>();
  net.emplace_back<tg::Linear<float>>(64, 2, gen);
  tg::init::xavier_uniform_(*fc1.weight, tg::init::calculate_gain("tanh"), gen);
  return full_loss(net, data);
}
}  // namespace

TEST_CASE("README: a model and a training step, then train_epoch with hooks, OneCycleLR and a checkpoint") {
  ReadmeData d;
  auto& loader = d.loader;
  const auto dir = tgtest::scratch_dir("readme", "train");
  const WorkingDir in_dir(dir);
  CoutCapture cout;
  {
#include "model_step.inc"
    const std::string summary = cout.str();
    CHECK_THAT(summary,
               Catch::Contains("├─LayerNorm: 1-2                         [32, 64]                  128\n"));
    CHECK_THAT(summary, Catch::Contains("Total params: 450\n"));
    const float after_one_epoch = full_loss(net, d.data);
    CHECK(after_one_epoch < untrained_loss(d.data));

#include "train_epoch.inc"
    CHECK(step == std::int64_t(10 * loader.size()));
    CHECK(sched.last_epoch() == step);
    CHECK(full_loss(net, d.data) < after_one_epoch);
    // The checkpoint holds the schedule: a fresh one loaded from it continues where it stopped.
    tg::Adam<float> opt2(net.parameters(), 0.5);
    tg::OneCycleLR<float> sched2(opt2, 0.3, 7);
    CHECK(tg::load_checkpoint("run.safetensors", net, opt2, sched2) == step);
    CHECK(sched2.state_dict() == sched.state_dict());
    CHECK(opt2.lr() == Approx(opt.lr()));
  }
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  std::filesystem::remove_all(dir);
}

TEST_CASE("README: checking a gradient") {
  CoutCapture cout;
  {
#include "gradcheck.inc"
    INFO(r.message);
    CHECK(r.ok);
    CHECK(cout.str() == r.message);
  }
  CHECK_THAT(cout.str(), Catch::Contains("max abs error"));
}

namespace {
// The README's MPI block, compiled (not run: it needs mpirun; tests/mpi_*.cpp run the same
// calls under mpirun -np 2 and 4). It takes a model factory and a training set as given.
[[maybe_unused]] void readme_dist_block(int argc, char** argv) {
  auto make_model = [] {
    auto net = std::make_shared<tg::Sequential<float>>();
    net->emplace_back<tg::Linear<float>>(2, 8);
    net->emplace_back<tg::BatchNorm1d<float>>(8);
    return std::static_pointer_cast<tg::Module<float>>(net);
  };
  const tg::Dataset<float> train = tg::moons<float>(64, 0.1, 1);
#include "dist.inc"
  (void)model;
  (void)sampler;
}
}  // namespace
