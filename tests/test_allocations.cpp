// "A training step allocates nothing after its first": counted, not assumed. This program
// counts every heap allocation (alloc_counter.hpp), then runs MLP training steps
// (Linear, LayerNorm or BatchNorm1d, Tanh, cross_entropy, SGD with momentum, zero_grad,
// tape.reset()) and an RNN step, and checks that steps after a warm-up make no heap allocation.
#include "alloc_counter.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::allocations_after_warmup;

namespace {

enum class Norm { None, Layer, Batch };

}  // namespace

TEST_CASE("the allocation counter sees an allocation") {
  // (so that a count of 0 below means "no allocation", not "no counting": also under ASan)
  const long before = tgtest::allocations();
  std::vector<int> v(static_cast<std::size_t>(before % 7) + 3);
  v[0] = 1;
  CHECK(tgtest::allocations() - before >= 1);
  CHECK(v[0] == 1);
}

TEST_CASE("an MLP training step allocates nothing after warm-up, for each normalization") {
  for (const Norm norm : {Norm::None, Norm::Layer, Norm::Batch}) {
    INFO("norm " << static_cast<int>(norm));
    tg::Generator gen(1);
    tg::Sequential<float> net;
    std::size_t in = 16;
    for (int k = 0; k < 2; ++k) {
      net.emplace_back<tg::Linear<float>>(in, 32, tg::LinearOptions(), gen);
      if (norm == Norm::Layer) net.emplace_back<tg::LayerNorm<float>>(tg::Shape{32});
      if (norm == Norm::Batch) net.emplace_back<tg::BatchNorm1d<float>>(32);
      net.emplace_back<tg::Tanh<float>>();
      in = 32;
    }
    net.emplace_back<tg::Linear<float>>(32, 4, tg::LinearOptions(), gen);
    tg::SGD<float> opt(net.parameters(), 0.05, tg::SGDOptions{0.9, 0, 0, false});
    const xt::xarray<float> x = tgtest::randn<float>({8, 16}, 2);
    const std::vector<std::int64_t> y{0, 1, 2, 3, 0, 1, 2, 3};
    tg::Tape<float> tape;
    float loss_value = 0;
    const long n = allocations_after_warmup([&] {
      opt.zero_grad();
      tape.reset();
      auto loss = tg::cross_entropy(net(tape, tape.input_view(x)), y);
      tape.backward(loss);
      opt.step();
      loss_value = loss.item();
    });
    CHECK(n == 0);
    CHECK(std::isfinite(loss_value));
  }
}

namespace {
template <class M>
long rnn_step_allocations(M& rnn, tg::Generator& gen) {
  tg::Linear<float> head(16, 1, tg::LinearOptions(), gen);
  auto params = rnn.parameters();
  for (auto* p : head.parameters()) params.push_back(p);
  tg::SGD<float> opt(params, 0.01);
  const xt::xarray<float> x = tgtest::randn<float>({5, 3, 4}, 4);
  const xt::xarray<float> target = tgtest::randn<float>({3, 1}, 5);
  tg::Tape<float> t;
  return allocations_after_warmup([&] {
    opt.zero_grad();
    t.reset();
    const auto r = rnn.run(t, t.input_view(x));
    const auto loss = tg::mse_loss(head(t, tg::select(r.h_n, 0, -1)), t.input_view(target));
    t.backward(loss);
    opt.step();
  });
}
}  // namespace

TEST_CASE("RNN, LayerNorm-RNN and BatchNorm-RNN training steps allocate nothing after warm-up") {
  tg::Generator gen(3);
  tg::RNN<float> rnn(4, 16, tg::RNNOptions(), gen);
  CHECK(rnn_step_allocations(rnn, gen) == 0);
  tg::LNRNN<float> lnrnn(4, 16);
  CHECK(rnn_step_allocations(lnrnn, gen) == 0);
  tg::BNRNN<float> bnrnn(4, 16, tg::BNRNNOptions().max_length(5));
  CHECK(rnn_step_allocations(bnrnn, gen) == 0);
}

TEST_CASE(
    "LSTM and GRU training steps allocate nothing after warm-up, also 2 bidirectional layers with dropout") {
  tg::Generator gen(4);
  tg::LSTM<float> lstm(4, 16, tg::LSTMOptions(), gen);
  CHECK(rnn_step_allocations(lstm, gen) == 0);
  tg::GRU<float> gru(4, 16, tg::GRUOptions(), gen);
  CHECK(rnn_step_allocations(gru, gen) == 0);
  const auto deep = [] { return tg::LSTMOptions().num_layers(2).bidirectional(true).dropout(0.3); };
  tg::LSTM<float> lstm2(4, 16, deep(), gen);
  CHECK(rnn_step_allocations(lstm2, gen) == 0);
  tg::GRU<float> gru2(4, 16, tg::GRUOptions().num_layers(2).bidirectional(true).dropout(0.3), gen);
  CHECK(rnn_step_allocations(gru2, gen) == 0);
  tg::RNN<float> rnn2(4, 16, tg::RNNOptions().num_layers(2).bidirectional(true).dropout(0.3), gen);
  CHECK(rnn_step_allocations(rnn2, gen) == 0);
}

TEST_CASE("a training step of a hand-written LSTMCell / GRUCell loop allocates nothing after warm-up") {
  tg::Generator gen(5);
  tg::LSTMCell<float> lstm(4, 16, tg::LSTMCellOptions(), gen);
  tg::GRUCell<float> gru(4, 16, tg::GRUCellOptions(), gen);
  auto params = lstm.parameters();
  for (auto* p : gru.parameters()) params.push_back(p);
  tg::SGD<float> opt(params, 0.01);
  const xt::xarray<float> x = tgtest::randn<float>({5, 3, 4}, 4);
  const xt::xarray<float> target = tgtest::randn<float>({3, 16}, 5);
  tg::Tape<float> t;
  const long n = allocations_after_warmup([&] {
    opt.zero_grad();
    t.reset();
    const auto xs = t.input_view(x);
    tg::LSTMCellState<float> s;
    tg::Var<float> h;
    for (std::ptrdiff_t k = 0; k < 5; ++k) {
      const auto xk = tg::select(xs, 0, k);
      s = lstm.run(t, xk, s.h, s.c);
      h = gru.run(t, xk, h);
    }
    t.backward(tg::mse_loss(tg::mul(s.h, h), t.input_view(target)));  // (not sum: its forward allocates)
    opt.step();
  });
  CHECK(n == 0);
}

TEST_CASE("LayerNorm-LSTM and LayerNorm-GRU training steps allocate nothing after warm-up") {
  tg::Generator gen(4);
  tg::LNLSTM<float> lstm(4, 16, tg::LNLSTMOptions(), gen);
  CHECK(rnn_step_allocations(lstm, gen) == 0);
  tg::LNGRU<float> gru(4, 16, tg::LNGRUOptions(), gen);
  CHECK(rnn_step_allocations(gru, gen) == 0);
}
