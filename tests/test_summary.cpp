// summary(model, input_shape): torchinfo's table of layers, output shapes and parameter counts.
#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

// Embedding -> LSTM -> Linear, its children called as a PyTorch model calls them.
class CharModel : public tg::Module<float> {
 public:
  CharModel(tg::Generator& gen, bool through_run = false) : through_run_(through_run) {
    emb = &register_module("emb", std::make_shared<tg::Embedding<float>>(20, 8, gen));
    lstm = &register_module("lstm", std::make_shared<tg::LSTM<float>>(8, 16, gen));
    head = &register_module("head", std::make_shared<tg::Linear<float>>(16, 20, gen));
  }
  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) override {
    auto e = (*emb)(t, x);
    auto h = through_run_ ? lstm->run(t, e).output : (*lstm)(t, e);
    return (*head)(t, h);
  }
  std::string type_name() const override { return "CharModel"; }
  tg::Embedding<float>* emb;
  tg::LSTM<float>* lstm;
  tg::Linear<float>* head;

 private:
  bool through_run_;
};

const std::string kRule(90, '=');

}  // namespace

TEST_CASE("summary: an MLP with LayerNorm, as torchinfo prints it") {
  tg::Generator gen(0);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 64, gen);
  net.emplace_back<tg::LayerNorm<float>>(64);
  net.emplace_back<tg::Tanh<float>>();
  net.emplace_back<tg::Linear<float>>(64, 2, gen);
  const std::string expected =
      kRule + "\n" + "Layer (type:depth-idx)                   Output Shape              Param #\n" + kRule +
      "\n"
      "Sequential                               [32, 2]                   --\n"
      "├─Linear: 1-1                            [32, 64]                  192\n"
      "├─LayerNorm: 1-2                         [32, 64]                  128\n"
      "├─Tanh: 1-3                              [32, 64]                  --\n"
      "└─Linear: 1-4                            [32, 2]                   130\n" +
      kRule +
      "\n"
      "Total params: 450\n"
      "Trainable params: 450\n"
      "Non-trainable params: 0\n" +
      kRule + "\n";
  CHECK(tg::summary(net, {32, 2}) == expected);
}

TEST_CASE("summary: an LSTM model, a frozen embedding and nested containers") {
  tg::Generator gen(0);
  CharModel model(gen);
  model.emb->weight->requires_grad = false;
  const std::string expected =
      kRule + "\n" + "Layer (type:depth-idx)                   Output Shape              Param #\n" + kRule +
      "\n"
      "CharModel                                [5, 3, 20]                --\n"
      "├─Embedding: 1-1                         [5, 3, 8]                 160\n"
      "├─LSTM: 1-2                              [5, 3, 16]                1,664\n"
      "└─Linear: 1-3                            [5, 3, 20]                340\n" +
      kRule +
      "\n"
      "Total params: 2,164\n"
      "Trainable params: 2,004\n"
      "Non-trainable params: 160\n" +
      kRule + "\n";
  CHECK(tg::summary(model, {5, 3}) == expected);

  // A child reached only through lstm.run shows "--": it is documented, not guessed.
  CharModel by_run(gen, true);
  CHECK_THAT(tg::summary(by_run, {5, 3}),
             Catch::Contains("├─LSTM: 1-2                              --                        1,664\n"));

  // Nested: the tree's prefixes as torchinfo draws them.
  tg::Sequential<double> outer;
  auto inner = std::make_shared<tg::Sequential<double>>();
  inner->emplace_back<tg::Linear<double>>(4, 3, gen);
  inner->emplace_back<tg::ReLU<double>>();
  outer.push_back(inner);
  outer.emplace_back<tg::Linear<double>>(3, 1, tg::LinearOptions().bias(false), gen);
  const std::string s = tg::summary(outer, {7, 4});
  CHECK_THAT(s, Catch::Contains("├─Sequential: 1-1                        [7, 3]                    --\n"
                                "│    ├─Linear: 2-1                       [7, 3]                    15\n"
                                "│    └─ReLU: 2-2                         [7, 3]                    --\n"
                                "└─Linear: 1-2                            [7, 1]                    3\n"));
  CHECK_THAT(s, Catch::Contains("Total params: 18\n"));
}

TEST_CASE("summary runs in eval mode on its own tape: the model, its buffers and grads are unchanged") {
  tg::Generator gen(1);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(3, 4, gen);
  auto& bn = net.emplace_back<tg::BatchNorm1d<float>>(4);
  net.emplace_back<tg::Dropout<float>>(0.5);
  const auto before = net.state_dict();
  CHECK_THAT(tg::summary(net, {1, 3}), Catch::Contains("BatchNorm1d: 1-2"));  // batch of 1: eval mode
  CHECK(net.is_training());
  CHECK(bn.is_training());
  tgtest::check_bitwise_same(before, net.state_dict());
  for (auto* p : net.parameters()) CHECK((p->grad() == xt::zeros<float>(p->shape())));
  CHECK(tg::detail::forward_observer() == nullptr);
}

TEST_CASE("summary with an input shape the model refuses is the model's error; nothing changes") {
  tg::Generator gen(2);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 4, gen);
  net.emplace_back<tg::BatchNorm1d<float>>(4);
  const auto before = net.state_dict();
  expect_error<tg::ShapeError>([&] { tg::summary(net, {8, 3}); }, {"in_features", "(8, 3)"});
  expect_error<tg::ShapeError>(
      [&] {
        tg::summary(net, {std::size_t(1) << 40, std::size_t(1) << 40});
      },
      {"summary: input shape"});
  tgtest::check_bitwise_same(before, net.state_dict());
  CHECK(net.is_training());
  CHECK(tg::detail::forward_observer() == nullptr);
}
