// SyncBatchNorm and convert_sync_batchnorm (nn/sync_batch_norm.hpp) on every rank of test_mpi:
// R ranks at batch b normalise as one BatchNorm1d at batch R * b.
#include <cstdio>

#include "expect_error.hpp"
#include "mpi_training.hpp"
#include "tapegrad/nn/distributed.hpp"
#include "tapegrad/nn/sync_batch_norm.hpp"

namespace tg = tapegrad;
namespace dist = tapegrad::dist;
using tgtest::expect_error;

namespace {

template <class T>
struct NormRun {
  xt::xarray<T> y, dx, dw, db, running_mean, running_var;
};

// Two training forwards (the running statistics move twice) and a backward of sum(y * up).
template <class T, class M>
NormRun<T> run_norm(M& m, const xt::xarray<T>& x, const xt::xarray<T>& up) {
  NormRun<T> out;
  for (int k = 0; k < 2; ++k) {
    tg::Tape<T> t;
    const tg::Var<T> xv = t.input(x, true);
    const tg::Var<T> y = m(t, xv);
    m.zero_grad();
    t.backward(y, up);
    out.y = t.value(y);
    out.dx = t.grad(xv);
  }
  out.dw = m.weight->grad();
  out.db = m.bias->grad();
  out.running_mean = *m.running_mean;
  out.running_var = *m.running_var;
  return out;
}

template <class T>
double max_diff(const xt::xarray<T>& a, const xt::xarray<T>& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(double(a.data()[i]) - double(b.data()[i])));
  return d;
}

// Rows [r b, (r + 1) b) of a (R b, ...) array.
template <class T>
xt::xarray<T> my_rows(const xt::xarray<T>& a, std::size_t b) {
  const std::size_t first = static_cast<std::size_t>(dist::rank()) * b;
  return xt::xarray<T>(xt::view(a, xt::range(first, first + b)));
}

}  // namespace

TEMPLATE_TEST_CASE("SyncBatchNorm in a group of one computes what BatchNorm1d does", "", float, double) {
  const double tol = std::is_same<TestType, float>::value ? 2e-6 : 1e-13;
  for (const tg::Shape& shape : {tg::Shape{6, 3}, tg::Shape{4, 3, 5}}) {
    INFO("input " << tg::shape_str(shape));
    const xt::xarray<TestType> x = tgtest::randn<TestType>(shape, 1, 3.0) + TestType(2);
    const xt::xarray<TestType> up = tgtest::randn<TestType>(shape, 2);
    tg::BatchNorm1d<TestType> bn(3);
    tg::SyncBatchNorm<TestType> sbn(3, {}, dist::Group::self());
    bn.weight->value = {1.5, -0.5, 2.0};
    sbn.weight->value = bn.weight->value;
    const NormRun<TestType> a = run_norm(bn, x, up), b = run_norm(sbn, x, up);
    CHECK(max_diff(a.y, b.y) < tol);
    CHECK(max_diff(a.dx, b.dx) < tol);
    CHECK(max_diff(a.dw, b.dw) < tol * 10);
    CHECK(max_diff(a.db, b.db) < tol * 10);
    CHECK(max_diff(a.running_mean, b.running_mean) < tol);
    CHECK(max_diff(a.running_var, b.running_var) < tol * 10);
    CHECK((*bn.num_batches_tracked)() == (*sbn.num_batches_tracked)());
    bn.eval();
    sbn.eval();
    tg::Tape<TestType> t;
    CHECK(max_diff(t.value(bn(t, t.constant(x))), t.value(sbn(t, t.constant(x)))) < tol);
  }
}

TEST_CASE("SyncBatchNorm on R ranks: the global batch's outputs, gradients and running statistics") {
  const int n = dist::world_size();
  const std::size_t b = 3, global = b * static_cast<std::size_t>(n);
  const xt::xarray<double> x = tgtest::randn<double>({global, 4, 2}, 3, 2.0) + 1.0;
  const xt::xarray<double> up = tgtest::randn<double>({global, 4, 2}, 4);
  tg::BatchNorm1d<double> bn(4);
  tg::SyncBatchNorm<double> sbn(4);
  bn.weight->value = {1.0, 2.0, -1.0, 0.5};
  sbn.weight->value = bn.weight->value;
  const NormRun<double> one = run_norm(bn, x, up);
  const NormRun<double> mine = run_norm(sbn, my_rows(x, b), my_rows(up, b));
  CHECK(max_diff(mine.y, my_rows(one.y, b)) < 1e-12);
  CHECK(max_diff(mine.dx, my_rows(one.dx, b)) < 1e-12);
  // weight's and bias's gradients are the local sums: their sum over the ranks is BatchNorm1d's
  xt::xarray<double> dw = mine.dw, db = mine.db;
  dist::allreduce(dw);
  dist::allreduce(db);
  CHECK(max_diff(dw, one.dw) < 1e-11);
  CHECK(max_diff(db, one.db) < 1e-11);
  CHECK(max_diff(mine.running_mean, one.running_mean) < 1e-13);
  CHECK(max_diff(mine.running_var, one.running_var) < 1e-13);  // unbiased with the global count
  std::vector<double> stats(mine.running_var.begin(), mine.running_var.end());
  CHECK(tgtest::spread_over_ranks(stats) == 0.0);
  // eval mode communicates nothing: rank 0 alone runs a forward (a collective would hang)
  sbn.eval();
  bn.eval();
  if (dist::rank() == 0) {
    tg::Tape<double> t;
    CHECK(max_diff(t.value(sbn(t, t.constant(x))), t.value(bn(t, t.constant(x)))) < 1e-13);
  }
  dist::barrier();
}

TEST_CASE("SyncBatchNorm's gradients match finite differences of the global loss (double)") {
  // A world of one: tapegrad's gradcheck of the module (input, weight, bias).
  tg::SyncBatchNorm<double> alone(3, {}, dist::Group::self());
  alone.weight->value = {0.7, -1.2, 2.0};
  const auto check = tg::gradcheck_module(alone, tgtest::randn<double>({4, 3, 2}, 5));
  INFO(check.message);
  CHECK(check.ok);
  // Every rank: L = sum over ranks of sum(y_r * c_r); every rank runs each forward (it is
  // collective) and the losses are summed.
  const int r = dist::rank();
  tg::SyncBatchNorm<double> sbn(3);
  sbn.weight->value = {0.7, -1.2, 2.0};
  xt::xarray<double> x = tgtest::randn<double>({2, 3, 2}, 10 + static_cast<std::uint64_t>(r));
  const xt::xarray<double> coeff = tgtest::randn<double>({2, 3, 2}, 20 + static_cast<std::uint64_t>(r));
  const auto global_loss = [&] {
    tg::Tape<double> t;
    const xt::xarray<double> y = t.value(sbn(t, t.constant(x)));
    return dist::allreduce_value(static_cast<double>(xt::sum(y * coeff)()));
  };
  tg::Tape<double> t;
  const tg::Var<double> xv = t.input(x, true);
  sbn.zero_grad();
  t.backward(sbn(t, xv), coeff);
  const xt::xarray<double> analytic = t.grad(xv);
  xt::xarray<double> dw = sbn.weight->grad();
  dist::allreduce(dw);  // the global loss's weight gradient: the sum of the local ones
  double worst = 0;
  const double h = 1e-6;
  // Directional derivatives: every rank moves its input along its own random direction v_r at
  // once; the global loss changes by sum over ranks of <dL/dx_r, v_r>.
  for (std::uint64_t k = 0; k < 6; ++k) {
    const xt::xarray<double> v = tgtest::randn<double>(x.shape(), 100 * k + static_cast<std::uint64_t>(r));
    const xt::xarray<double> keep = x;
    x = keep + h * v;
    const double plus = global_loss();
    x = keep - h * v;
    const double minus = global_loss();
    x = keep;
    const double predicted = dist::allreduce_value(static_cast<double>(xt::sum(analytic * v)()));
    worst = std::max(worst, std::abs((plus - minus) / (2 * h) - predicted));
  }
  for (std::size_t c = 0; c < 3; ++c) {  // every rank moves the shared weight together
    const double keep = sbn.weight->value(c);
    sbn.weight->value(c) = keep + h;
    const double plus = global_loss();
    sbn.weight->value(c) = keep - h;
    const double minus = global_loss();
    sbn.weight->value(c) = keep;
    worst = std::max(worst, std::abs((plus - minus) / (2 * h) - dw(c)));
  }
  CHECK(dist::allreduce_value(worst, dist::ReduceOp::max) < 1e-7);
}

TEST_CASE("DDP with convert_sync_batchnorm trains as one process with BatchNorm1d at the global batch") {
  const int r = dist::rank(), n = dist::world_size();
  const std::size_t b = 4, global = b * static_cast<std::size_t>(n);
  auto single = tgtest::make_mlp(tgtest::Norm::batch, 5);
  tgtest::train_steps(
      *single, 0, global, global, [] {}, [] {});
  auto converted = tg::convert_sync_batchnorm<float>(tgtest::make_mlp(tgtest::Norm::batch, r == 0 ? 5 : 77));
  CHECK(dynamic_cast<tg::SyncBatchNorm<float>*>(
      &(*std::static_pointer_cast<tg::Sequential<float>>(converted))[1]));
  tg::DistributedDataParallel<float> ddp(converted);
  double spread = 0;
  tgtest::train_steps(
      ddp, static_cast<std::size_t>(r) * b, b, global, [&] { ddp.sync_gradients(); },
      [&] { spread = std::max(spread, tgtest::spread_over_ranks(tgtest::flat_state(ddp))); });
  const double diff = dist::allreduce_value(
      tgtest::max_abs_diff(tgtest::flat_state(ddp), tgtest::flat_state(*single)), dist::ReduceOp::max);
  if (r == 0) {
    std::printf(
        "test_mpi: DDP on %d ranks at batch %zu vs one process at batch %zu, SyncBatchNorm: max |difference| %.3g\n",
        n, b, global, diff);
  }
  CHECK(spread == 0.0);  // parameters and running statistics alike
  CHECK(diff < 2e-6);
}

TEST_CASE("convert_sync_batchnorm swaps every BatchNorm1d, keeping its parameters, buffers and mode") {
  tg::Generator gen(1);
  auto inner = std::make_shared<tg::Sequential<float>>();
  auto& bn_inner =
      inner->emplace_back<tg::BatchNorm1d<float>>(4, tg::BatchNormOptions().momentum(std::nullopt));
  inner->emplace_back<tg::Tanh<float>>();
  auto outer = std::make_shared<tg::Sequential<float>>();
  outer->emplace_back<tg::Linear<float>>(3, 4, tg::LinearOptions{}, gen);
  outer->push_back(inner);
  auto& bn_outer = outer->emplace_back<tg::BatchNorm1d<float>>(4);
  bn_inner.weight->value = {1, 2, 3, 4};
  (*bn_outer.running_var)(2) = 7;
  bn_inner.eval();
  const tg::StateDict<float> before = outer->state_dict();
  const auto same = tg::convert_sync_batchnorm<float>(outer);
  CHECK(same == outer);
  CHECK(outer->to_string().find("BatchNorm1d") == std::string::npos);
  const tg::StateDict<float> after = outer->state_dict();
  REQUIRE(after.size() == before.size());
  for (const auto& kv : before) CHECK((after.at(kv.first) == kv.second));
  auto& s_inner = dynamic_cast<tg::SyncBatchNorm<float>&>((*inner)[0]);
  CHECK_FALSE(s_inner.is_training());
  CHECK_FALSE(s_inner.options().momentum().has_value());
  CHECK(dynamic_cast<tg::SyncBatchNorm<float>&>((*outer)[2]).is_training());
  // the root itself
  const auto root = tg::convert_sync_batchnorm<float>(std::make_shared<tg::BatchNorm1d<float>>(2));
  CHECK(root->type_name() == "SyncBatchNorm");
  // a forward through the converted model works
  tg::Tape<float> t;
  CHECK(t.shape((*outer)(t, t.constant(tgtest::randn<float>({5, 3}, 3)))) == tg::Shape{5, 4});
}

TEST_CASE(
    "SyncBatchNorm with a wrong input shape, a bad config or a global batch of one value is refused; nothing changes") {
  tg::SyncBatchNorm<float> sbn(3);
  tg::Tape<float> t;
  expect_error<tg::ShapeError>(
      [&] {
        sbn(t, t.constant(xt::zeros<float>({4, 2})));
      },
      {"SyncBatchNorm", "(N, 3)", "(4, 2)"});
  CHECK(t.size() == 1);
  expect_error<tg::ValueError>([] { tg::SyncBatchNorm<float>(0); }, {"num_features must be positive"});
  expect_error<tg::ValueError>([] { tg::SyncBatchNorm<float>(2, tg::BatchNormOptions().momentum(1.5)); },
                               {"SyncBatchNorm", "momentum", "1.5"});
  expect_error<tg::ValueError>([] { tg::SyncBatchNorm<float>(2, tg::BatchNormOptions().eps(-1)); },
                               {"SyncBatchNorm"});
  // rank 0 holds one example, the others none: one value per channel in the global batch
  const xt::xarray<float> x =
      xt::ones<float>({dist::rank() == 0 ? std::size_t(1) : std::size_t(0), std::size_t(3)});
  const std::size_t size = t.size();
  expect_error<tg::StateError>(
      [&] { sbn(t, t.constant(x)); },
      {"SyncBatchNorm: Expected more than 1 value per channel", "got input size (",
       "and 1 over the global batch of the " + std::to_string(dist::world_size()) + " ranks"});
  CHECK(t.size() == size + 1);  // the constant; nothing of the failed forward
  CHECK((*sbn.num_batches_tracked)() == 0.0f);
  CHECK((*sbn.running_var)(0) == 1.0f);
  // convert_sync_batchnorm: a BatchNorm1d held by a module that cannot swap it; a null module
  tg::DistributedDataParallel<float> ddp(std::make_shared<tg::BatchNorm1d<float>>(2), {},
                                         dist::Group::self());
  std::shared_ptr<tg::Module<float>> held(&ddp, [](tg::Module<float>*) {});
  expect_error<tg::ValueError>([&] { tg::convert_sync_batchnorm<float>(held); },
                               {"'module'", "DistributedDataParallel", "cannot be swapped"});
  CHECK(ddp.module().type_name() == "BatchNorm1d");
  expect_error<tg::ValueError>([] { tg::convert_sync_batchnorm<float>(nullptr); }, {"null"});
}

TEST_CASE(
    "replace_child on a module that keeps references to its children is a StateError; an unknown name or null module a ValueError") {
  tg::Sequential<float> seq;
  seq.emplace_back<tg::Tanh<float>>();
  expect_error<tg::ValueError>([&] { seq.replace_child("1", std::make_shared<tg::ReLU<float>>()); },
                               {"Sequential has no child named '1'"});
  expect_error<tg::ValueError>([&] { seq.replace_child("0", nullptr); }, {"'0' would become a null module"});
  CHECK(seq[0].type_name() == "Tanh");
  tg::DistributedDataParallel<float> ddp(std::make_shared<tg::Tanh<float>>(), {}, dist::Group::self());
  expect_error<tg::StateError>([&] { ddp.replace_child("module", std::make_shared<tg::ReLU<float>>()); },
                               {"DistributedDataParallel keeps references", "'module'"});
  CHECK(ddp.module().type_name() == "Tanh");
  seq.replace_child("0", std::make_shared<tg::ReLU<float>>());
  CHECK(seq[0].type_name() == "ReLU");
  CHECK(seq.named_children()[0].second->type_name() == "ReLU");
}
