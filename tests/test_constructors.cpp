// The constructors users write, as in PyTorch: Linear(2, 3, gen), LayerNorm(64), LSTM(8, 16, gen)
// ... next to the options overloads, which they must equal.
#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::check_bitwise_same;
using tgtest::expect_error;

namespace {

bool same_engine(tg::Generator& a, tg::Generator& b) { return a.engine() == b.engine(); }

// M(a, b, gen) equals M(a, b, Options(), gen) bit for bit, draws from gen (another seed gives
// other values) and leaves the default generator alone.
template <class M, class Options>
void check_generator_constructor(std::size_t a, std::size_t b) {
  tg::Generator before = tg::default_generator();
  tg::Generator g1(42), g2(42), g3(43);
  M with_gen(a, b, g1);
  M with_options(a, b, Options(), g2);
  M other_seed(a, b, g3);
  check_bitwise_same(with_gen.state_dict(), with_options.state_dict());
  CHECK(same_engine(g1, g2));
  CHECK(!same_engine(g1, tg::default_generator()));
  CHECK(same_engine(before, tg::default_generator()));
  bool differs = false;
  const auto sd = with_gen.state_dict();
  for (const auto& kv : other_seed.state_dict()) differs = differs || kv.second != sd.at(kv.first);
  CHECK(differs);
  CHECK(with_gen.to_string() == with_options.to_string());
}

}  // namespace

TEST_CASE("constructors: every module with a Generator takes (sizes, gen) like the options overload") {
  check_generator_constructor<tg::Linear<float>, tg::LinearOptions>(2, 3);
  check_generator_constructor<tg::Embedding<float>, tg::EmbeddingOptions>(10, 4);
  check_generator_constructor<tg::RNN<float>, tg::RNNOptions>(3, 5);
  check_generator_constructor<tg::LSTM<float>, tg::LSTMOptions>(3, 5);
  check_generator_constructor<tg::GRU<float>, tg::GRUOptions>(3, 5);
  check_generator_constructor<tg::RNNCell<float>, tg::RNNCellOptions>(3, 5);
  check_generator_constructor<tg::LSTMCell<float>, tg::LSTMCellOptions>(3, 5);
  check_generator_constructor<tg::GRUCell<float>, tg::GRUCellOptions>(3, 5);
  check_generator_constructor<tg::LNRNN<float>, tg::LNRNNOptions>(3, 5);
  check_generator_constructor<tg::BNRNN<float>, tg::BNRNNOptions>(3, 5);
  check_generator_constructor<tg::LNLSTM<float>, tg::LNLSTMOptions>(3, 5);
  check_generator_constructor<tg::LNGRU<float>, tg::LNGRUOptions>(3, 5);
}

TEST_CASE("constructors: Linear(2, 3, gen) in a Sequential, as a student writes it") {
  tg::Generator gen(0), same(0);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 3, gen);
  net.emplace_back<tg::LayerNorm<float>>(3);
  net.emplace_back<tg::Tanh<float>>();
  net.emplace_back<tg::Linear<float>>(3, 1, tg::LinearOptions().bias(false), gen);
  tg::Sequential<float> ref;
  ref.emplace_back<tg::Linear<float>>(2, 3, tg::LinearOptions(), same);
  ref.emplace_back<tg::LayerNorm<float>>(tg::Shape{3});
  ref.emplace_back<tg::Tanh<float>>();
  ref.emplace_back<tg::Linear<float>>(3, 1, tg::LinearOptions().bias(false), same);
  check_bitwise_same(net.state_dict(), ref.state_dict());
  CHECK(net.to_string() == ref.to_string());
}

TEST_CASE("constructors: LayerNorm(64) and RMSNorm(64) normalize a last dim of 64, as Shape{64} does") {
  tg::LayerNorm<float> ln(64);
  CHECK(ln.weight->shape() == tg::Shape{64});
  CHECK(ln.extra_repr() == tg::LayerNorm<float>(tg::Shape{64}).extra_repr());
  tg::LayerNorm<double> ln_eps(8, tg::LayerNormOptions().eps(1e-3));
  CHECK(ln_eps.options().eps() == 1e-3);
  tg::LayerNorm<float> ln2({4, 8});  // a braced list is still a shape
  CHECK(ln2.weight->shape() == tg::Shape{4, 8});
  tg::RMSNorm<float> rms(64);
  CHECK(rms.weight->shape() == tg::Shape{64});
  CHECK(rms.extra_repr() == tg::RMSNorm<float>(tg::Shape{64}).extra_repr());
  // The sizes-only modules already read as in PyTorch.
  CHECK(tg::BatchNorm1d<float>(64).weight->shape() == tg::Shape{64});
  CHECK(tg::GroupNorm<float>(2, 8).weight->shape() == tg::Shape{8});
  CHECK(tg::InstanceNorm1d<float>(4).type_name() == "InstanceNorm1d");
}

TEST_CASE(
    "constructors: the short forms check their sizes as the options forms do; the generator is unchanged") {
  tg::Generator gen(0), fresh(0);
  expect_error<tg::ValueError>([] { tg::RMSNorm<float> rms(0); }, {"RMSNorm", "normalized_shape"});
  expect_error<tg::ValueError>([&] { tg::LSTM<float> lstm(3, 0, gen); }, {"hidden_size"});
  expect_error<tg::ValueError>([&] { tg::Linear<float> l(std::size_t(1) << 32, std::size_t(1) << 32, gen); },
                               {"4294967296"});
  CHECK(gen.engine() == fresh.engine());
}
