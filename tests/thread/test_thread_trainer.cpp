// The trainer over thread ranks, full batch: rank r trains on its block of the examples with its
// loss weighted by its share, so the averaged gradient is the full-batch gradient and W ranks must
// reach the weights of one rank. One SGD step of a linear model is checked against its closed form.
#include <gtest/gtest.h>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/io/safetensors.h"
#include "distill/model/weights.h"
#include "distill/train/trainer.h"
#include "ranks.h"
#include "test_util.h"

using namespace distill;
using distill::test::run_ranks;
using distill::test::wave;

namespace {

constexpr std::int64_t kDim = 6, kClasses = 3, kTrain = 22, kDev = 10;

// Feature vectors with a class signal: example i has label i % 3 and +3 on feature `label`.
DataSplit vector_split(std::int64_t n, double phase) {
  DataSplit s;
  s.n = n;
  s.dim = kDim;
  auto x = wave({n, kDim}, phase).contiguous();
  s.features.assign(x.data_ptr<float>(), x.data_ptr<float>() + n * kDim);
  for (std::int64_t i = 0; i < n; ++i) {
    s.labels.push_back(i % kClasses);
    s.example_id.push_back(1000 + i);
    s.features[i * kDim + i % kClasses] += 3.0f;
  }
  return s;
}

Dataset vector_data() {
  Dataset d;
  d.path = "<in-memory feature vectors>";
  d.task = "features";
  d.label_names = {"a", "b", "c"};
  d.splits["train"] = vector_split(kTrain, 0.1);  // 22 rows: uneven blocks on 4 ranks (5, 6, 5, 6)
  d.splits["dev"] = vector_split(kDev, 2.3);
  d.content_hash = dataset_content_hash(d);
  return d;
}

torch::Tensor features(const DataSplit& s) { return torch::tensor(s.features).reshape({s.n, s.dim}); }
torch::Tensor labels(const DataSplit& s) { return torch::tensor(s.labels, torch::kInt64); }

ModelConfig vector_model(const std::string& kind, long depth) {
  ModelConfig m;
  m.kind = kind == "mlp" ? ModelKind::kMlp : ModelKind::kDeepLinear;
  m.input_dim = kDim;
  m.num_labels = kClasses;
  m.width = 8;
  m.depth = depth;
  m.dropout = 0;
  return m;
}

// Full-batch SGD with a constant learning rate. The one place that sets TrainOptions' named
// choices (optimizer, schedule, device, precision, reduce).
TrainOptions full_batch_sgd(const std::string& out_dir, long steps, double lr, double momentum, double clip,
                            bool blocking) {
  TrainOptions o;
  o.out_dir = out_dir;
  o.batch_size = 1 << 20;  // at least the train split: full batch
  o.max_steps = steps;
  o.lr = lr;
  o.momentum = momentum;
  o.max_grad_norm = clip;
  o.log_every = 1000;
  o.optimizer = OptimizerKind::kSgd;
  o.schedule = Schedule::kConstant;
  o.device = "cpu";
  o.precision = Precision::kFp32;  // closed forms and 1-rank comparisons hold in float32
  o.reduce = blocking ? ReduceMode::kBlocking : ReduceMode::kNonblocking;
  return o;
}

// Every parameter set from a fixed formula (the default generator is shared by thread ranks).
void fixed_init(NetworkImpl& net) {
  torch::NoGradGuard g;
  double phase = 0;
  for (auto& p : net.parameters()) p.copy_(0.4 * wave(p.sizes(), phase += 0.7));
}

struct Trained {
  TrainResult result;
  std::map<std::string, torch::Tensor> weights;  // of the final checkpoint
};

// Trains on `ranks` thread ranks (1: the single-process communicator, the reference) and checks
// that every rank reports the same result.
Trained train_on(int ranks, const Dataset& d, const ModelConfig& m, const TrainOptions& o) {
  TrainJob job;
  job.data = &d;
  job.train_split = "train";
  job.eval_split = "dev";
  job.store = nullptr;
  job.model = m;
  job.init = fixed_init;
  job.opt = o;
  job.resume = false;
  job.config_hash = "thread-tier";
  std::vector<TrainResult> results(ranks);
  if (ranks == 1) {
    torch::set_num_threads(1);
    results[0] = train(*make_local_communicator(), job);
  } else {
    run_ranks(ranks, [&](Communicator& c) { results[c.rank()] = train(c, job); });
  }
  for (const auto& r : results) {
    EXPECT_EQ(r.steps, results[0].steps);
    EXPECT_EQ(r.final_loss, results[0].final_loss);
    EXPECT_EQ(r.dev_accuracy, results[0].dev_accuracy);
  }
  Trained out{results[0], {}};
  for (const auto& [name, blob] : load_safetensors(out.result.checkpoint + "/model.safetensors").tensors)
    out.weights[name] = from_blob(blob);
  return out;
}

// Accuracy of the vector model `kind` with `w` on split `s`, in plain tensor algebra.
double accuracy(const std::map<std::string, torch::Tensor>& w, const ModelConfig& m, const DataSplit& s) {
  auto x = features(s);
  for (long i = 0; i < m.depth; ++i) {
    const std::string l = "layers." + std::to_string(i);
    x = torch::matmul(x, w.at(l + ".weight").t());
    if (m.kind == ModelKind::kMlp) x = x + w.at(l + ".bias");
    if (m.kind == ModelKind::kMlp && i + 1 < m.depth) x = torch::relu(x);
  }
  return x.argmax(1).eq(labels(s)).to(torch::kFloat64).mean().item<double>();
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

// One step of W <- W - lr * dL/dW for f(x) = W x and the mean cross-entropy over all n examples:
// dL/dW = (softmax(X W^T) - onehot(y))^T X / n, whatever the number of ranks.
TEST(ThreadTrainerClosedForm, OneSgdStepOfALinearModel) {
  const Dataset d = vector_data();
  const ModelConfig m = vector_model("deep_linear", 1);
  const double lr = 0.5;
  Network net = make_network(m);
  fixed_init(*net);
  const auto w0 = net->named_parameters()["layers.0.weight"].detach().to(torch::kFloat64);
  const auto x = features(d.split("train")).to(torch::kFloat64);
  const auto y = labels(d.split("train"));
  const auto log_p = torch::log_softmax(torch::matmul(x, w0.t()), 1);
  const auto onehot = torch::one_hot(y, kClasses).to(torch::kFloat64);
  const auto w1 = w0 - lr * torch::matmul((log_p.exp() - onehot).t(), x) / static_cast<double>(kTrain);
  const double loss0 = -(log_p * onehot).sum(1).mean().item<double>();
  for (int ranks : {1, 2, 3, 4}) {
    SCOPED_TRACE("ranks " + std::to_string(ranks));
    const auto dir = distill::test::temp_dir("thread-sgd-step-np" + std::to_string(ranks));
    const Trained run = train_on(ranks, d, m, full_batch_sgd(dir, 1, lr, 0, 0, false));
    EXPECT_EQ(run.result.steps, 1);
    EXPECT_NEAR(run.result.final_loss, loss0, 1e-5);  // the loss of the step, before the update
    EXPECT_LT(max_diff(run.weights.at("layers.0.weight"), w1), 1e-5);
    EXPECT_DOUBLE_EQ(run.result.dev_accuracy, accuracy(run.weights, m, d.split("dev")));
  }
}

namespace {

struct Case {
  int ranks;
  std::string kind;
  bool blocking;
};

class ThreadTrainer : public ::testing::TestWithParam<Case> {};

}  // namespace

// Several steps of a deeper student (momentum, clipping): W ranks reach the weights of one rank.
TEST_P(ThreadTrainer, FullBatchStepsMatchOneRank) {
  const Case k = GetParam();
  const Dataset d = vector_data();
  const ModelConfig m = vector_model(k.kind, 3);
  const std::string name = "thread-steps-" + k.kind + (k.blocking ? "-blocking" : "-nonblocking");
  auto options = [&](int ranks) {
    return full_batch_sgd(distill::test::temp_dir(name + "-np" + std::to_string(ranks)), 6, 0.3, 0.9, 1.0, k.blocking);
  };
  const Trained one = train_on(1, d, m, options(1));
  const Trained many = train_on(k.ranks, d, m, options(k.ranks));
  EXPECT_EQ(many.result.steps, 6);
  EXPECT_NEAR(many.result.final_loss, one.result.final_loss, 1e-5);
  ASSERT_EQ(many.weights.size(), one.weights.size());
  for (const auto& [param, w] : one.weights) EXPECT_LT(max_diff(many.weights.at(param), w), 1e-5) << param;
  EXPECT_DOUBLE_EQ(many.result.dev_accuracy, accuracy(many.weights, m, d.split("dev")));
  // Training moved the weights (the comparison is not between two untouched copies).
  Network init = make_network(m);
  fixed_init(*init);
  EXPECT_GT(max_diff(init->named_parameters()["layers.0.weight"], many.weights.at("layers.0.weight")), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Ranks, ThreadTrainer,
                         ::testing::Values(Case{2, "deep_linear", false}, Case{4, "deep_linear", true},
                                           Case{2, "mlp", true}, Case{4, "mlp", false}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return "np" + std::to_string(i.param.ranks) + "_" + i.param.kind +
                                  (i.param.blocking ? "_blocking" : "_nonblocking");
                         });
