// The bad-input catalogue's index: every public header under include/tapegrad has test cases
// that feed its functions bad input (exact error type, the values named, nothing changed).
// The map below names them; this program checks that it lists every installed header and
// that each named case exists in tests/, so a new header without bad-input cases fails here.
// It also holds the cases of core/blas.hpp, which no other area's tests own.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

const std::map<std::string, std::vector<std::string>>& catalogue() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"check/gradcheck.hpp",
       {"gradcheck with a wrt list of the wrong length is a ValueError naming both counts",
        "gradcheck with nothing to check is a ValueError, as in PyTorch, not a pass",
        "gradcheck with a zero, negative or NaN eps, or a negative or NaN tolerance, is a ValueError naming it",
        "taylor_test with a non-positive, infinite or repeated step, or a NaN min_order, is a ValueError naming it"}},
      {"core/batch_invariant.hpp",
       {"in batch-invariant mode a shape mismatch is still a ShapeError naming the shapes; the tape is unchanged"}},
      {"core/blas.hpp",
       {"gemm with a leading dimension shorter than a row or a null buffer is a ValueError naming it; C is unchanged",
        "set_blas_threads(0) is a ValueError naming the count; the thread count is unchanged"}},
      {"core/threads.hpp",
       {"set_num_threads refuses 0, negative and absurd counts, naming them; the setting is unchanged"}},
      {"core/parameter.hpp",
       {"a parameter changed in place after recording makes backward a StateError naming the versions",
        "a Parameter whose value was replaced by another shape is a StateError when bound, until zero_grad"}},
      {"core/warning.hpp",
       {"set_tape_growth_check with min_sweeps 0 is a ValueError naming it; the setting is unchanged",
        "with the error setting, a growing tape's backward is a StateError naming the nodes; nothing changes"}},
      {"core/print.hpp", {"printing a stale or empty Var says so instead of throwing"}},
      {"core/random.hpp",
       {"a Generator refuses below(0), a reversed or infinite uniform range and a negative or NaN std; its state is unchanged"}},
      {"core/shape.hpp",
       {"checked_mul, checked_add and checked_numel are exact up to 2^63 - 1 and throw past it",
        "broadcasting two shapes whose result overflows is a ShapeError naming both"}},
      {"core/tape.hpp",
       {"backward twice without retain_graph is a StateError that says so, and keeps the first gradients",
        "a Var from a different tape is a StateError naming the op and the input",
        "a Var recorded before tape.reset() is a StateError naming its index, even when its slot is reused",
        "a Var kept across 2^32 resets is still stale: generations are 64-bit and do not wrap",
        "truncate to the current size changes nothing, past it is a ValueError, to 0 is like reset",
        "Tape::node and Sequential::operator[] out of range are ValueErrors naming the index and the size",
        "anomaly mode: log of a negative number is a NumericalError naming the op and its index; nothing is recorded",
        "multi-output backward with mismatched lists, a mis-shaped seed or a foreign Var is refused; nothing changes",
        "tape.name with a Var of another tape, a stale or an empty Var is a StateError; nothing is named"}},
      {"data/csv.hpp",
       {"a CSV row with too few cells is an IoError naming its line, its cell count and the header's",
        "a non-numeric or non-finite CSV cell is an IoError naming the line, column, column name and text",
        "a CSV label that is not a non-negative integer, or a missing label column, is an IoError naming it",
        "an empty CSV, one with only a header, or a missing file is an IoError naming the source"}},
      {"data/dataloader.hpp",
       {"a DataLoader with batch size 0 or over an empty dataset is a ValueError naming it",
        "DataLoader::fill_batch with an order holding an index past the dataset's end is a ValueError",
        "DataLoader with batch size SIZE_MAX (a -1) is a ValueError; a batch larger than the dataset is one batch"}},
      {"data/distributed_sampler.hpp",
       {"DistributedSampler with a rank outside [0, R - 1] or fewer than 1 replica is a ValueError naming them"}},
      {"dist.hpp",
       {"dist: arrays whose shapes or counts differ across ranks are a ShapeError on every rank naming them",
        "dist: a broadcast root outside the group, or roots that differ across ranks, is an error on every rank"}},
      {"nn/distributed.hpp",
       {"DistributedDataParallel with a null module or bad bucket cap is a ValueError; models that differ across ranks are a ShapeError on every rank"}},
      {"nn/sync_batch_norm.hpp",
       {"SyncBatchNorm with a wrong input shape, a bad config or a global batch of one value is refused; nothing changes"}},
      {"data/dataset.hpp",
       {"a Dataset with 3 labels for 4 examples, or a negative label, names the counts and the label",
        "a Dataset with a largest label of 2^63 - 1 has no num_classes: a ValueError, not 2^63",
        "a Dataset of inputs whose non-zero dims overflow is a ShapeError naming the shape"}},
      {"data/mnist.hpp",
       {"MNIST digit files with a pixel outside [0, 1], a bad length or no data array are IoErrors naming the problem",
        "parse_mnist_digits with max_images of -1 is a ValueError; a huge max_images means no limit"}},
      {"data/text.hpp",
       {"load_text of a missing, empty or directory path is an IoError naming the path",
        "CharVocab refuses an empty text, an unknown character and an id out of range, naming them",
        "contiguous_split with a fraction outside (0, 1) or an empty part is a ValueError naming it",
        "SequenceLoader with seq_len or batch_size 0, a negative token or too few tokens is a ValueError naming it"}},
      {"data/synthetic.hpp",
       {"synthetic data sets with no examples or a negative, NaN or infinite noise are ValueErrors naming the argument",
        "synthetic generators reject counts that are negative ints or whose element counts overflow"}},
      {"io/checkpoint.hpp",
       {"a checkpoint truncated at every byte offset is an IoError naming the sizes, and the model is unchanged",
        "saving a checkpoint into a missing directory or under a reserved name is an error and leaves the disk as it was",
        "a checkpoint with a malformed optimizer key leaves model and optimizer unchanged",
        "a checkpoint with a scheduler refuses another scheduler type or a missing one, and changes nothing"}},
      {"io/safetensors.hpp",
       {"a checkpoint whose header length exceeds the file is an IoError naming both sizes",
        "checkpoint tensors with overlapping or out-of-range data_offsets are IoErrors naming the tensors and offsets",
        "a checkpoint with an unknown or unsupported dtype is an IoError naming the tensor and the dtype",
        "a name that appears twice in a safetensors header is reported as a duplicate",
        "numbers out of range and nesting anywhere in a header are IoErrors naming the place",
        "tensor names and metadata that are not UTF-8 are ValueErrors on save, and the file is untouched",
        "a FIFO or a device given as a file is refused at once, without reading or waiting",
        "a 12 MB header of nested arrays costs about its own size, not a JSON tree"}},
      {"nn/activation.hpp",
       {"activation modules name the op for an input from a reset tape, and softmax modules refuse a missing axis"}},
      {"nn/gru.hpp",
       {"GRU input of rank 1 or 4, of the wrong input_size, or an h0 of the wrong shape is a ShapeError naming them",
        "GRU on an empty sequence is a ValueError; hidden_size 0, num_layers 0 or a bad dropout too"}},
      {"nn/batch_renorm.hpp",
       {"BatchRenorm1d training on a batch of one, a wrong channel count or bad limits is refused; nothing changes"}},
      {"nn/embedding.hpp",
       {"the Embedding module refuses bad sizes, padding_idx and inputs, and leaves the tape unchanged"}},
      {"nn/init.hpp",
       {"init: fan-based schemes and orthogonal_ refuse 0-d and 1-d tensors with a ValueError like torch's",
        "init: an unknown nonlinearity or mode, a reversed range, a negative std or gain is a ValueError naming it"}},
      {"nn/instance_norm.hpp",
       {"InstanceNorm1d with L = 1 in training, a wrong channel count, 2-D or empty input is refused; nothing changes"}},
      {"nn/linear.hpp",
       {"Linear(3, 2) given input (5, 4) is a ShapeError naming in_features and the input shape",
        "Linear(2^32, 2^32) is a ValueError naming both sizes, not a module with an empty weight"}},
      {"nn/ln_recurrent.hpp",
       {"LNLSTM and LNGRU given 5 features for input_size 4, or a rank-4 input, are ShapeErrors naming both; nothing changes",
        "an LNLSTM h0 or c0 or an LNGRU h0 of the wrong shape is a ShapeError naming both shapes; nothing changes",
        "an LNLSTM c0 from another tape is a StateError naming the module; nothing changes",
        "LNLSTM and LNGRU on an empty sequence are ValueErrors naming the shape; nothing changes",
        "LNLSTM and LNGRU with hidden_size 0, a negative or NaN eps, or overflowing sizes are ValueErrors naming them"}},
      {"nn/lstm.hpp",
       {"LSTM input of rank 1 or 4, or of the wrong input_size, is a ShapeError naming the shapes; tape unchanged",
        "LSTM h0 or c0 of the wrong shape is a ShapeError naming the expected and actual shapes",
        "LSTM on an empty sequence is a ValueError; the tape is unchanged",
        "LSTM and LSTMCell with hidden_size 0, num_layers 0 or dropout outside [0, 1] are ValueErrors naming it"}},
      {"nn/module.hpp",
       {"load_state_dict with a missing key is a ValueError listing it, and the model is unchanged",
        "load_state_dict with an unexpected key is a ValueError listing it, and the model is unchanged",
        "load_state_dict with a mis-shaped tensor is a ShapeError naming the key and both shapes",
        "a Sequential whose last Linear does not match throws a ShapeError and leaves tape and buffers as they were",
        "Sequential indexing past the last layer is a ValueError naming the index and the size",
        "replace_child on a module that keeps references to its children is a StateError; an unknown name or null module a ValueError"}},
      {"nn/ghost_batch_norm.hpp",
       {"GhostBatchNorm1d with a chunk of one example, a wrong channel count or bad config is refused; nothing changes",
        "GhostBatchNorm1d in anomaly mode refuses a running_var update to Inf in a later chunk; nothing changes"}},
      {"nn/group_norm.hpp",
       {"GroupNorm(3, 6) given 4 channels or a 4-D input is a ShapeError; a bad config is a ValueError"}},
      {"nn/module_check.hpp",
       {"gradcheck_module with an input of the wrong shape is the module's ShapeError; its buffers are unchanged"}},
      {"nn/norm.hpp",
       {"LayerNorm over (4) given input (2, 5) is a ShapeError naming both, and changes nothing",
        "BatchNorm1d training on a batch of one is a StateError naming the input size; running stats are untouched",
        "BatchNorm1d training on an empty batch is a StateError naming the shape, and changes nothing",
        "BatchNorm1d(3) given 4 channels, or a 4-D input, is a ShapeError naming the expected and actual shapes",
        "a negative or NaN eps for LayerNorm and BatchNorm1d is a ValueError at construction"}},
      {"nn/norm_rnn.hpp",
       {"RNN, LNRNN and BNRNN given 5 features for input_size 4 are ShapeErrors naming both; nothing changes",
        "BNRNN training on a batch of one and any RNN on an empty sequence are refused; nothing changes",
        "the norm and recurrent module constructors reject negative sizes and overflowing products"}},
      {"nn/rms_norm.hpp",
       {"RMSNorm over (4) given input (2, 5) is a ShapeError naming both; a bad config is a ValueError"}},
      {"nn/rnn.hpp",
       {"RNN input of rank 1 or 4 is a ShapeError naming the expected layout and the shape; nothing changes",
        "an RNN h0 of the wrong shape is a ShapeError naming the expected and the actual h0 shape"}},
      {"nn/rnn_cell.hpp",
       {"RNNCell input of rank 3 or the wrong input_size, an h of the wrong shape, or a bad config are errors naming them",
        "LSTMCell input of rank 3, the wrong input_size, or h or c of the wrong shape is a ShapeError naming them",
        "GRUCell input of rank 3, the wrong input_size, or an h of the wrong shape is a ShapeError naming them"}},
      {"nn/summary.hpp",
       {"summary with an input shape the model refuses is the model's error; nothing changes"}},
      {"ops/activation.hpp",
       {"every elementwise, activation, reduction and dropout op names itself and the input for a stale, empty or foreign Var"}},
      {"ops/dropout.hpp",
       {"dropout with p outside [0, 1] or NaN is a ValueError naming p, in the op and the module",
        "dropout with p outside [0, 1] draws nothing from the generator and records nothing"}},
      {"ops/elementwise.hpp",
       {"adding (2, 3) and (4) is a ShapeError naming both shapes, and the tape is unchanged",
        "clamp with min 2 greater than max 1 is a ValueError naming both bounds",
        "compound assignment whose result would change the left side's shape is a ShapeError; x is unchanged"}},
      {"ops/gru.hpp",
       {"gru_layer with mismatched x, weights, h0 or biases is a ShapeError naming the shapes; tape unchanged",
        "gru_layer on an empty sequence is a ValueError, a foreign or stale input a StateError naming it"}},
      {"ops/loss.hpp",
       {"cross_entropy with target 3 or -2 for 3 classes is a ValueError naming the index and value",
        "cross_entropy with 3 targets for a batch of 2 is a ShapeError naming both lengths",
        "cross_entropy of an empty batch (0, 3) is a ValueError naming the shape",
        "mse_loss of (4, 1) against (4) is a ShapeError naming both (stricter than PyTorch)",
        "a (N, C, T) target out of range is a ValueError naming its position; shaped targets of another shape a ShapeError",
        "masked_mean with a mask of another shape or a bad axis, and length_mask with a too-long length, name the problem"}},
      {"ops/embedding.hpp",
       {"embedding with an index out of range is a ValueError naming it, its position and num_embeddings"}},
      {"ops/group_norm.hpp",
       {"group_norm with channels not divisible by num_groups, 0 groups, 4-D or empty input is refused; tape unchanged",
        "group_norm and rms_norm name themselves and the input for a stale or foreign Var; tape unchanged"}},
      {"ops/lstm.hpp",
       {"lstm_layer with mismatched x, weights, h0, c0 or biases is a ShapeError naming the shapes; tape unchanged",
        "lstm_layer on an empty sequence is a ValueError, a foreign or stale input a StateError naming it",
        "split_lstm_layer of a Var that is not (T + 1, N, H) with T >= 1 is a ShapeError naming the shape"}},
      {"ops/matmul.hpp",
       {"matmul of (3, 4) and (5, 2) is a ShapeError naming both shapes, and the tape is unchanged",
        "matmul, linear, the losses, the norm ops and rnn_layer name themselves and the input for a stale, empty or foreign Var"}},
      {"ops/norm.hpp",
       {"matmul, linear, the losses, the norm ops and rnn_layer name themselves and the input for a stale, empty or foreign Var",
        "anomaly mode reports a float32 layer_norm output beyond FLT_MAX and records nothing"}},
      {"ops/reduce.hpp",
       {"reducing a 2-D Var over axis 2 or -3 is a ValueError naming the op, the axis and the rank",
        "max and min over an axis of size 0 are ValueErrors naming the axis and the shape; the tape is unchanged"}},
      {"ops/rnn.hpp",
       {"matmul, linear, the losses, the norm ops and rnn_layer name themselves and the input for a stale, empty or foreign Var"}},
      {"ops/rms_norm.hpp",
       {"rms_norm with a bad normalized_ndim, weight shape or eps is refused naming them; tape unchanged",
        "group_norm and rms_norm name themselves and the input for a stale or foreign Var; tape unchanged"}},
      {"ops/shape.hpp",
       {"reshaping (2, 3) into (4, 2) or (4, -1) is a ShapeError naming both and the element count",
        "select index 3 or -4 of an axis of size 3 is a ValueError naming the index, the axis size and the shape",
        "slice with step 0 or an axis out of range is a ValueError naming it",
        "concat of (2, 3) and (2, 4) along axis 0, or of different ranks, is a ShapeError naming the shapes",
        "permute with a repeated axis and transpose of a missing axis are ValueErrors naming the dims",
        "shape ops name themselves and the input for a stale, empty or foreign Var",
        "reshape of (4) into (4, 2^62 + 1) is a ShapeError naming the sizes, and the tape is unchanged",
        "split with sizes that wrap around to the axis size is a ValueError naming the list"}},
      {"optim/adam.hpp",
       {"Adam with beta1 = 1 or a negative eps is a ValueError naming the parameter and value",
        "Adam with an infinite eps or weight decay and RMSprop with alpha above 1 or an infinite eps are ValueErrors"}},
      {"optim/clip.hpp",
       {"clip_grad_norm of a NaN or infinite gradient with error_if_nonfinite is a ValueError; grads untouched"}},
      {"optim/optimizer.hpp",
       {"an optimizer over an empty parameter list is a ValueError naming the optimizer",
        "the same parameter twice in one optimizer is a ValueError naming its position",
        "optimizer step with a grad of the wrong shape is a StateError, and no parameter moves",
        "optimizer load_state_dict with a missing lr, a foreign key or a mis-shaped state changes nothing",
        "Optimizer::load_state_dict takes only keys of the documented grammar, and a refusal changes nothing",
        "every optimizer's step after a parameter was reshaped under its state is a StateError that changes nothing",
        "opt.state of a foreign parameter, an unknown hyperparameter or a bad value is a ValueError naming it; nothing changes"}},
      {"optim/one_cycle.hpp",
       {"OneCycleLR without a step count, with a non-positive count, pct_start outside [0, 1] or a bad factor is a ValueError naming it"}},
      {"optim/plateau.hpp",
       {"ReduceLROnPlateau with a factor of 1 or below 0, a negative patience or a NaN threshold is a ValueError naming it"}},
      {"optim/rmsprop.hpp",
       {"Adam with an infinite eps or weight decay and RMSprop with alpha above 1 or an infinite eps are ValueErrors"}},
      {"optim/scheduler.hpp",
       {"a scheduler with step size 0, T_max -1 or a start factor of 0 is a ValueError, and the lr is unchanged",
        "StepLR with a negative, zero, NaN or infinite gamma is a ValueError naming it; the lr is unchanged",
        "CosineAnnealingLR with a negative, NaN or infinite eta_min is a ValueError naming it; the lr is unchanged",
        "a scheduler step whose lr the optimizer refuses throws and leaves last_epoch and the lr unchanged",
        "lr_at of a negative epoch is a ValueError naming the scheduler and the epoch",
        "scheduler load_state_dict with a missing, unknown or malformed entry is a ValueError naming it; nothing changes"}},
      {"optim/sgd.hpp",
       {"SGD with an infinite momentum or weight decay, or a dampening outside [0, 1], is a ValueError naming it"}},
      {"train/fit.hpp",
       {"argmax_rows of a non-matrix and classification_accuracy of an empty or unlabelled set name the problem",
        "classification_accuracy rejects a batch size of 0 or a negative one converted to size_t, naming it",
        "an exception from a step hook ends the epoch there; before_step's skips that batch's step"}},
      {"train/metrics_log.hpp",
       {"a metrics log refuses an empty row, a repeated or comma-holding column and a changed header; the file keeps its rows"}},
      {"train/plot.hpp",
       {"plot_metrics of a missing, empty, header-only or ragged CSV or one without numbers is an IoError",
        "plot_metrics with a bad extension, an unknown or text column or a bad size is a ValueError",
        "plot_metrics without gnuplot on PATH is a StateError saying how to install it"}},
      {"train/progress.hpp", {"format_duration of a huge finite duration is not a negative time"}},
  };
  return m;
}

// Headers with nothing to call wrongly: the error types, the umbrella header, the
// gradient-write struct with its branch-free add, the StateDict alias, and nn/repr.hpp's
// formatters (every double and shape has a printed form).
const std::set<std::string> kNoInputs = {"core/error.hpp", "core/grad_write.hpp", "core/state_dict.hpp",
                                         "nn/repr.hpp", "tapegrad.hpp"};

std::string all_test_sources() {
  std::string text;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(TAPEGRAD_SOURCE_DIR) / "tests")) {
    if (e.path().extension() != ".cpp") continue;
    std::ifstream in(e.path());
    std::ostringstream os;
    os << in.rdbuf();
    text += os.str();
  }
  return text;
}

// Whether `sources` holds TEST_CASE("name" ... (a formatter may put the name on the next line).
bool names_a_test_case(const std::string& sources, const std::string& name) {
  const std::string quoted = "\"" + name + "\"";
  for (std::size_t at = sources.find(quoted); at != std::string::npos; at = sources.find(quoted, at + 1)) {
    std::size_t k = at;
    while (k > 0 && std::isspace(static_cast<unsigned char>(sources[k - 1]))) --k;
    if (k >= 10 && sources.compare(k - 10, 10, "TEST_CASE(") == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("every public header has bad-input cases in the catalogue, and every case it names exists") {
  const auto root = std::filesystem::path(TAPEGRAD_SOURCE_DIR) / "include" / "tapegrad";
  std::set<std::string> headers;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.path().extension() == ".hpp") headers.insert(e.path().lexically_relative(root).generic_string());
  }
  REQUIRE(headers.size() > 30);
  for (const auto& h : headers) {
    INFO(h);
    CHECK((catalogue().count(h) == 1 || kNoInputs.count(h) == 1));
  }
  const std::string sources = all_test_sources();
  std::size_t cases = 0;
  for (const auto& [header, names] : catalogue()) {
    INFO(header);
    CHECK(headers.count(header) == 1);  // a header that was renamed or removed
    CHECK(!names.empty());
    for (const auto& name : names) {
      INFO(name);
      CHECK(names_a_test_case(sources, name));
      ++cases;
    }
  }
  CHECK(cases >= catalogue().size());
}

TEST_CASE(
    "gemm with a leading dimension shorter than a row or a null buffer is a ValueError naming it; C is unchanged") {
  std::vector<double> a(6, 1.0), b(6, 2.0), c(4, 7.0);
  const std::vector<double> c_before = c;
  // A (2 x 3) needs lda >= 3; B (3 x 2) needs ldb >= 2; C (2 x 2) needs ldc >= 2.
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, false, 2, 2, 3, 1.0, a.data(), 2, b.data(), 2, 0.0, c.data(), 2); },
      {"gemm", "lda = 2", "3 elements"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(true, false, 2, 2, 3, 1.0, a.data(), 1, b.data(), 2, 0.0, c.data(), 2); },
      {"gemm", "lda = 1", "2 elements"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 1, 0.0, c.data(), 2); },
      {"gemm", "ldb = 1", "2 elements"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, true, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2); },
      {"gemm", "ldb = 2", "3 elements"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 1); },
      {"gemm", "ldc = 1", "2 elements"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, false, 2, 2, 3, 1.0, nullptr, 3, b.data(), 2, 0.0, c.data(), 2); },
      {"gemm", "null"});
  expect_error<tg::ValueError>(
      [&] { tg::gemm<double>(false, false, 2, 2, 0, 1.0, a.data(), 0, b.data(), 0, 0.0, nullptr, 2); },
      {"gemm", "null"});
  CHECK(c == c_before);
  // The smallest valid leading dimensions work, and so does K = 0 with lda = ldb = 0.
  tg::gemm<double>(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2);
  CHECK(c == std::vector<double>{6.0, 6.0, 6.0, 6.0});
  tg::gemm<double>(false, false, 2, 2, 0, 1.0, nullptr, 0, nullptr, 0, 0.0, c.data(), 2);
  CHECK(c == std::vector<double>{0.0, 0.0, 0.0, 0.0});
}

TEST_CASE("set_blas_threads(0) is a ValueError naming the count; the thread count is unchanged") {
  const int before = tg::blas_threads();
  expect_error<tg::ValueError>([&] { tg::set_blas_threads(0); }, {"set_blas_threads", "0"});
  expect_error<tg::ValueError>([&] { tg::set_blas_threads(-3); }, {"set_blas_threads", "-3"});
  CHECK(tg::blas_threads() == before);
}
