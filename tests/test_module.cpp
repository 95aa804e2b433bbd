#include "support.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/module_check.hpp"
#include "tapegrad/nn/activation.hpp"

namespace tg = tapegrad;

namespace {
// A minimal module for testing the machinery: y = x * scale + shift, and a buffer that
// counts forward calls in training mode (like BatchNorm's num_batches_tracked).
template <class T>
class Affine : public tg::Module<T> {
 public:
  explicit Affine(std::size_t n)
      : scale(this->register_parameter("scale", xt::ones<T>({n}))),
        shift(this->register_parameter("shift", xt::zeros<T>({n}))),
        calls(this->register_buffer("calls", xt::zeros<T>({1}))) {}
  tg::Var<T> forward(tg::Tape<T>& t, const tg::Var<T>& x) override {
    if (this->is_training()) calls(0) += 1;
    return x * t.param(scale) + t.param(shift);
  }
  std::string type_name() const override { return "Affine"; }
  std::string extra_repr() const override { return "n=" + std::to_string(scale.size()); }
  tg::Parameter<T>& scale;
  tg::Parameter<T>& shift;
  xt::xarray<T>& calls;
};

std::shared_ptr<tg::Sequential<double>> two_layers() {
  auto net = std::make_shared<tg::Sequential<double>>();
  net->emplace_back<Affine<double>>(3);
  net->emplace_back<Affine<double>>(3);
  return net;
}
}  // namespace

TEST_CASE("named_parameters and named_buffers use PyTorch's dotted names") {
  auto net = two_layers();
  std::vector<std::string> names;
  for (auto& [n, p] : net->named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.scale", "0.shift", "1.scale", "1.shift"});
  auto buffers = net->named_buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[1].first == "1.calls");
  CHECK(net->num_parameters() == 12);
  CHECK(net->parameters().size() == 4);
}

TEST_CASE("to_string prints the module tree") {
  auto net = two_layers();
  CHECK(net->to_string() == "Sequential(\n  (0): Affine(n=3)\n  (1): Affine(n=3)\n)\n");
}

TEST_CASE("state_dict round-trips through load_state_dict") {
  auto a = two_layers();
  auto b = two_layers();
  auto& first = static_cast<Affine<double>&>((*a)[0]);
  first.scale.value = xt::xarray<double>({2.0, 3.0, 4.0});
  first.calls(0) = 7;
  b->load_state_dict(a->state_dict());
  const auto sb = b->state_dict();
  CHECK((sb.at("0.scale") == xt::xarray<double>({2.0, 3.0, 4.0})));
  CHECK(sb.at("0.calls")(0) == 7.0);
  CHECK(sb.size() == 6);
}

TEST_CASE("load_state_dict rejects missing, unexpected and mis-shaped keys without changing the module") {
  auto net = two_layers();
  const auto before = net->state_dict();
  auto state = net->state_dict();
  state.erase("1.shift");
  state["2.scale"] = xt::zeros<double>({3});
  CHECK_THROWS_WITH(net->load_state_dict(state), Catch::Contains("missing key(s): \"1.shift\"") &&
                                                     Catch::Contains("unexpected key(s): \"2.scale\""));
  CHECK_THROWS_AS(net->load_state_dict(state), tg::ValueError);

  auto bad_shape = net->state_dict();
  bad_shape["0.scale"] = xt::zeros<double>({4});
  bad_shape["0.shift"] = xt::zeros<double>({4});
  CHECK_THROWS_WITH(net->load_state_dict(bad_shape), Catch::Contains("size mismatch for 0.scale") &&
                                                         Catch::Contains("(4)") && Catch::Contains("(3)"));
  CHECK_THROWS_AS(net->load_state_dict(bad_shape), tg::ShapeError);
  const auto after = net->state_dict();
  for (const auto& [k, v] : before) CHECK((after.at(k) == v));
}

TEST_CASE("train and eval propagate to children") {
  auto net = two_layers();
  net->eval();
  CHECK_FALSE((*net)[1].is_training());
  net->train();
  CHECK((*net)[0].is_training());
}

TEST_CASE("a module's backward fills its parameters' grads, and zero_grad clears them") {
  auto net = two_layers();
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>({1.0, 2.0, 3.0}));
  auto y = net->forward(t, x);
  t.backward(y, xt::xarray<double>({1.0, 1.0, 1.0}));
  auto& first = static_cast<Affine<double>&>((*net)[0]);
  CHECK((first.scale.grad() == xt::xarray<double>({1.0, 2.0, 3.0})));  // second layer is identity
  net->zero_grad();
  CHECK((first.scale.grad() == xt::xarray<double>({0.0, 0.0, 0.0})));
}

TEST_CASE("gradcheck_module checks input and parameter gradients and restores buffers") {
  auto net = two_layers();
  for (auto* p : net->parameters()) p->value = tgtest::randn({3}, p->size() + 11);
  auto& first = static_cast<Affine<double>&>((*net)[0]);
  const double calls_before = first.calls(0);
  const auto r = tg::gradcheck_module(*net, tgtest::randn({2, 3}, 5));
  INFO(r.message);
  CHECK(r.ok);
  CHECK(r.checked == 6 * (6 + 12));  // 6 outputs x (6 input entries + 12 parameter entries)
  CHECK(first.calls(0) == calls_before);
}

TEST_CASE("registering a name twice is a ValueError") {
  struct Twice : tg::Module<float> {
    Twice() {
      register_parameter("w", xt::zeros<float>({1}));
      register_parameter("w", xt::zeros<float>({1}));
    }
    tg::Var<float> forward(tg::Tape<float>&, const tg::Var<float>& x) override { return x; }
    std::string type_name() const override { return "Twice"; }
  };
  CHECK_THROWS_AS(Twice(), tg::ValueError);
}

TEST_CASE("activation modules apply their op, and Dropout is identity in eval mode") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>({-2.0, -0.5, 0.5, 2.0}));
  CHECK((tg::ReLU<double>().forward(t, x).value() == tg::relu(x).value()));
  CHECK((tg::Tanh<double>().forward(t, x).value() == tg::tanh(x).value()));
  CHECK((tg::Sigmoid<double>().forward(t, x).value() == tg::sigmoid(x).value()));
  CHECK((tg::GELU<double>(tg::GeluApprox::Tanh).forward(t, x).value() ==
         tg::gelu(x, tg::GeluApprox::Tanh).value()));
  CHECK(tg::LeakyReLU<double>(0.2).forward(t, x).value()(0) == Approx(-0.4));
  CHECK(tg::ELU<double>(1.0).forward(t, x).value()(0) == Approx(std::expm1(-2.0)));
  CHECK(tg::Softplus<double>().forward(t, x).value()(3) == Approx(std::log1p(std::exp(2.0))));
  tg::Dropout<double> drop(0.5, 1);
  drop.eval();
  CHECK((drop.forward(t, x).value() == x.value()));
  drop.train();
  const auto y = drop.forward(t, x).value();
  for (std::size_t i = 0; i < 4; ++i) CHECK((y(i) == 0.0 || y(i) == Approx(2 * x.value()(i))));
  CHECK_THROWS_AS(tg::Dropout<double>(-0.1), tg::ValueError);
}
