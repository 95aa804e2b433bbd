// "A training step allocates nothing after its first", for a character language model's step:
// SequenceLoader::fill_batch, Embedding, Linear, cross_entropy over (B*L, V) rows, masked_mean,
// backward and SGD. (permute and the reductions sum / mean allocate their axis lists on each
// call, so this step avoids them.) The counter is alloc_counter.hpp's, as in test_allocations.cpp
// (a replaced operator new, or the sanitizer's allocation hook in the ASan and TSan builds): it
// counts every allocation of this program, so it lives in a program of its own.
#include "alloc_counter.hpp"
#include "support.hpp"

namespace tg = tapegrad;

TEST_CASE("the sequence allocation counter sees an allocation") {
  const long before = tgtest::allocations();
  std::vector<int> v(static_cast<std::size_t>(before % 7) + 3);
  v[0] = 1;
  CHECK(tgtest::allocations() - before >= 1);
  CHECK(v[0] == 1);
}

TEST_CASE(
    "a character language-model step (loader, Embedding, sequence losses, masked_mean, SGD) allocates nothing after warm-up") {
  tg::Generator gen(7);
  tg::Embedding<float> emb(12, 8, tg::EmbeddingOptions().padding_idx(0), gen);
  tg::Linear<float> head(8, 12, tg::LinearOptions(), gen);
  auto params = emb.parameters();
  for (auto* p : head.parameters()) params.push_back(p);
  tg::SGD<float> opt(params, 0.1);
  std::vector<std::int64_t> tokens(401);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int64_t>((i * 7 + i / 5) % 12);
  tg::SequenceLoader loader(tokens, 6, 4, true, 3, /*drop_last=*/true);  // 66 windows: 16 batches of 4
  const std::vector<std::size_t> order = loader.epoch_order(0);
  const xt::xarray<bool> mask = tg::length_mask({6, 3, 5, 1}, 6);
  tg::SequenceBatch batch;
  tg::Tape<float> t;
  std::size_t b = 0;
  float loss_value = 0;
  const std::vector<std::ptrdiff_t> rows_shape = {24, 12}, per_seq_shape = {4, 6};
  const tg::CrossEntropyOptions none{tg::Reduction::None, 0.0, -100};
  const auto step = [&] {
    loader.fill_batch(order, b++ % loader.size(), batch);
    opt.zero_grad();
    t.reset();
    auto rows = tg::reshape(head(t, emb(t, batch.inputs)), rows_shape);  // (4, 6, 12) -> (24, 12)
    auto per_pos = tg::reshape(tg::cross_entropy(rows, batch.targets, none), per_seq_shape);
    auto loss = tg::cross_entropy(rows, batch.targets) + tg::masked_mean(per_pos, mask);
    t.backward(loss);
    opt.step();
    loss_value = loss.item();
  };
  CHECK(tgtest::allocations_after_warmup(step, 3, 20) == 0);
  CHECK(std::isfinite(loss_value));
}
