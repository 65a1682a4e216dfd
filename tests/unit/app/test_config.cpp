#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>

#include <thread>

#include "distill/app/commands.h"
#include "distill/app/config.h"
#include "distill/comm/communicator.h"
#include "distill/util/error.h"
#include "test_util.h"

using namespace distill;

namespace {
std::string write_yaml(const std::string& text) {
  auto dir = test::temp_dir("config");
  std::ofstream(dir + "/c.yaml") << text;
  return dir + "/c.yaml";
}
std::string load_error(const std::string& text) {
  RunConfig c;
  return test::error_of([&] { load_config_file(c, write_yaml(text)); });
}

// dump_config() of the default config and of one that sets most keys, as distill printed them
// before the options were declared with their structs (Note [config hash]).
const char* const kDefaultDump = R"yaml(data:
  path: ""
  train_split: train
  eval_split: dev
  test_split: test
teacher:
  path: ""
  batch_size: 64
  online: false
  ranks: 0
  stream_timeout: 600
  extra_paths: ""
  device: auto
  precision: fp32
student:
  init: ""
  init_layers: ""
  kind: bert
  vocab_size: 1000
  hidden: 128
  layers: 2
  heads: 2
  intermediate: 512
  max_positions: 128
  type_vocab: 2
  num_labels: 0
  dropout: 0.10000000000000001
  attention_dropout: 0.10000000000000001
  input_dim: 0
  width: 64
  depth: 2
  init_scale: 0
store:
  path: ""
  dtype: float16
  shard_size: 1024
  topk: 0
  max_bytes: 10737418240
  window: 4
  extra_paths: ""
  verify: true
distill:
  alpha: 0.5
  beta: 0.5
  temperature: 2
  soft_loss: kl
  weight_schedule: constant
  alpha_end: -1
  beta_end: -1
  temperature_schedule: constant
  temperature_end: -1
  teacher_weights: ""
  hidden_map: ""
  attention_map: ""
  hidden_loss: mse
  attention_loss: kl
  hidden_weight: 1
  attention_weight: 1
  relation_heads: 0
  head_mismatch: refuse
train:
  out_dir: runs/student
  batch_size: 32
  epochs: 3
  max_steps: 0
  lr: 0.00050000000000000001
  warmup_steps: 0
  optimizer: adamw
  momentum: 0
  weight_decay: -1
  schedule: linear
  max_grad_norm: 1
  checkpoint_every: 0
  keep_checkpoints: 2
  log_every: 10
  tensorboard: true
  eval_batch_size: 128
  seed: 1234
  threads: 0
  device: auto
  precision: auto
  bucket_mb: 25
  reduce: nonblocking
  prefetch: 2
  shuffle_window: 16
  comm_timeout: 600
  nonfinite: stop
  max_skipped_steps: 10
  select: none
  patience: 0
)yaml";

const char* const kNonDefaultSets[] = {"data.path=x y.h5",
                                       "data.train_split=a: b",
                                       "data.eval_split=yes",
                                       "data.test_split=#t",
                                       "teacher.path=/t/ck",
                                       "teacher.batch_size=8",
                                       "teacher.online=true",
                                       "teacher.ranks=2",
                                       "teacher.stream_timeout=0.5",
                                       "teacher.device=cuda:1",
                                       "teacher.precision=bf16",
                                       "student.init=/s/init",
                                       "student.init_layers=2,4",
                                       "student.kind=mlp",
                                       "student.vocab_size=77",
                                       "student.num_labels=3",
                                       "student.dropout=0.25",
                                       "student.attention_dropout=0",
                                       "student.input_dim=16",
                                       "student.width=32",
                                       "student.depth=3",
                                       "student.init_scale=0.001",
                                       "store.path=/st",
                                       "store.dtype=float32",
                                       "store.shard_size=100",
                                       "store.topk=16",
                                       "store.max_bytes=12345",
                                       "store.window=2",
                                       "store.verify=false",
                                       "distill.alpha=0.1",
                                       "distill.beta=0.9",
                                       "distill.temperature=1e-7",
                                       "distill.hidden_map=uniform",
                                       "distill.attention_map=0:0,1:3",
                                       "distill.hidden_loss=cosine",
                                       "distill.attention_loss=mse",
                                       "distill.hidden_weight=2.5",
                                       "distill.attention_weight=0",
                                       "distill.head_mismatch=average",
                                       "train.out_dir=/o",
                                       "train.batch_size=7",
                                       "train.epochs=1",
                                       "train.max_steps=9",
                                       "train.lr=0.3",
                                       "train.warmup_steps=2",
                                       "train.optimizer=sgd",
                                       "train.momentum=0.9",
                                       "train.weight_decay=0",
                                       "train.schedule=constant",
                                       "train.max_grad_norm=0",
                                       "train.checkpoint_every=3",
                                       "train.keep_checkpoints=0",
                                       "train.log_every=1",
                                       "train.eval_batch_size=5",
                                       "train.seed=-4",
                                       "train.threads=1",
                                       "train.device=cpu",
                                       "train.precision=bf16",
                                       "train.bucket_mb=0.5",
                                       "train.reduce=blocking",
                                       "train.prefetch=0",
                                       "train.comm_timeout=30",
                                       "train.nonfinite=skip",
                                       "train.max_skipped_steps=0"};

const char* const kNonDefaultDump = R"yaml(data:
  path: x y.h5
  train_split: "a: b"
  eval_split: yes
  test_split: "#t"
teacher:
  path: /t/ck
  batch_size: 8
  online: true
  ranks: 2
  stream_timeout: 0.5
  extra_paths: ""
  device: cuda:1
  precision: bf16
student:
  init: /s/init
  init_layers: 2,4
  kind: mlp
  vocab_size: 77
  hidden: 128
  layers: 2
  heads: 2
  intermediate: 512
  max_positions: 128
  type_vocab: 2
  num_labels: 3
  dropout: 0.25
  attention_dropout: 0
  input_dim: 16
  width: 32
  depth: 3
  init_scale: 0.001
store:
  path: /st
  dtype: float32
  shard_size: 100
  topk: 16
  max_bytes: 12345
  window: 2
  extra_paths: ""
  verify: false
distill:
  alpha: 0.10000000000000001
  beta: 0.90000000000000002
  temperature: 9.9999999999999995e-08
  soft_loss: kl
  weight_schedule: constant
  alpha_end: -1
  beta_end: -1
  temperature_schedule: constant
  temperature_end: -1
  teacher_weights: ""
  hidden_map: uniform
  attention_map: 0:0,1:3
  hidden_loss: cosine
  attention_loss: mse
  hidden_weight: 2.5
  attention_weight: 0
  relation_heads: 0
  head_mismatch: average
train:
  out_dir: /o
  batch_size: 7
  epochs: 1
  max_steps: 9
  lr: 0.29999999999999999
  warmup_steps: 2
  optimizer: sgd
  momentum: 0.90000000000000002
  weight_decay: 0
  schedule: constant
  max_grad_norm: 0
  checkpoint_every: 3
  keep_checkpoints: 0
  log_every: 1
  tensorboard: true
  eval_batch_size: 5
  seed: -4
  threads: 1
  device: cpu
  precision: bf16
  bucket_mb: 0.5
  reduce: blocking
  prefetch: 0
  shuffle_window: 16
  comm_timeout: 30
  nonfinite: skip
  max_skipped_steps: 0
  select: none
  patience: 0
)yaml";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST(Config, LoadsTypedFieldsAndKeepsDefaults) {
  RunConfig c;
  load_config_file(c, write_yaml("data:\n  path: d.h5\nstudent:\n  layers: 6\ndistill:\n  temperature: 3.5\n"));
  EXPECT_EQ(c.data.path, "d.h5");
  EXPECT_EQ(c.student.layers, 6);
  EXPECT_DOUBLE_EQ(c.distill.temperature, 3.5);
  EXPECT_EQ(c.train.batch_size, TrainOptions{}.batch_size);
  apply_override(c, "train.lr=0.25");
  EXPECT_DOUBLE_EQ(c.train.lr, 0.25);
  validate_config(c);
}

TEST(Config, UnknownKeysNameThePathAndNearestKey) {
  auto msg = load_error("train:\n  learning_rat: 0.1\n");
  EXPECT_NE(msg.find("unknown config key 'train.learning_rat'"), std::string::npos) << msg;
  msg = load_error("student:\n  layer: 2\n");
  EXPECT_NE(msg.find("did you mean 'student.layers'"), std::string::npos) << msg;
  msg = load_error("trian:\n  lr: 0.1\n");
  EXPECT_NE(msg.find("'trian.lr'"), std::string::npos) << msg;
  msg = load_error("train:\n  lr: fast\n");
  EXPECT_NE(msg.find("train.lr = 'fast' is not a number"), std::string::npos) << msg;
  RunConfig c;
  EXPECT_THROW(apply_override(c, "train.lr"), ConfigError);
  EXPECT_THROW(apply_override(c, "train.steps=3"), ConfigError);
}

TEST(Config, ValidationAndHash) {
  RunConfig c;
  c.data.path = "d.h5";
  c.student.heads = 3;  // does not divide 128
  try {
    validate_config(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("student.heads = 3"), std::string::npos) << e.what();
  }
  RunConfig a, b;
  EXPECT_EQ(config_hash(a), config_hash(b));
  b.train.seed = 5;
  EXPECT_NE(config_hash(a), config_hash(b));
  // The dump reloads to the same config.
  RunConfig d;
  d.data.path = "x y.h5";
  d.distill.alpha = 0.1;
  RunConfig e;
  load_config_file(e, write_yaml(dump_config(d)));
  EXPECT_EQ(config_hash(e), config_hash(d));
}

TEST(LocalCommunicator, IsRankZeroOfOne) {
  auto c = make_local_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  float v[2] = {1.5f, 2.5f};
  c->allreduce(v, 2, DType::kFloat32, ReduceOp::kAverage);
  EXPECT_EQ(v[1], 2.5f);
  EXPECT_EQ(c->allgather_string("abc"), std::vector<std::string>{"abc"});
  EXPECT_NO_THROW(c->check_same("x", "thing"));
  EXPECT_TRUE(c->any(true));
}

TEST(Threads, SizedFromRanksOnTheNode) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(size_threads(0, 1), cores);
  EXPECT_EQ(size_threads(0, cores), 1);
  EXPECT_EQ(size_threads(0, 4 * cores), 1);  // oversubscribed: never below one
  EXPECT_EQ(size_threads(3, 8), 3);          // the user's choice wins
  EXPECT_EQ(at::get_num_threads(), 3);
  size_threads(0, 1);
}

TEST(ConfigDump, PrintsTheDefaultConfigAsBefore) {
  RunConfig c;
  EXPECT_EQ(dump_config(c), kDefaultDump);
  c.data.path = "d.h5";
  EXPECT_EQ(config_hash(c), "75c5d82a8c51c2d7");  // distill.soft_loss added
  // Keys added later count only when set (Note [config hash]): older checkpoints still resume.
  c.train.select = Select::kDevF1;
  EXPECT_NE(config_hash(c), "75c5d82a8c51c2d7");
}

TEST(ConfigDump, PrintsANonDefaultConfigAsBefore) {
  RunConfig c;
  for (const char* s : kNonDefaultSets) apply_override(c, s);
  validate_config(c);
  EXPECT_EQ(dump_config(c), kNonDefaultDump);
  EXPECT_EQ(config_hash(c), "90d74db4d9b16f51");  // train.precision: auto, distill.soft_loss added
  RunConfig back;
  load_config_file(back, write_yaml(dump_config(c)));
  EXPECT_EQ(dump_config(back), kNonDefaultDump);
}

TEST(Config, FixedChoicesAreCheckedWhereTheyEnter) {
  RunConfig c;
  apply_override(c, "train.optimizer=sgd");
  EXPECT_EQ(c.train.optimizer, OptimizerKind::kSgd);
  apply_override(c, "distill.head_mismatch=average");
  EXPECT_EQ(c.layers.head_mismatch, HeadMismatch::kAverage);
  const std::pair<const char*, const char*> bad[] = {
      {"train.optimizer=x", "--set: train.optimizer = 'x', expected adamw or sgd"},
      {"train.schedule=x", "--set: train.schedule = 'x', expected linear or constant"},
      {"train.precision=fp16",
       "--set: train.precision = 'fp16', expected auto, fp32 or bf16 (fp16 training would need loss scaling, which "
       "distill does not do)"},
      {"train.reduce=x", "--set: train.reduce = 'x', expected nonblocking or blocking"},
      {"train.nonfinite=x", "--set: train.nonfinite = 'x', expected stop or skip"},
      {"distill.hidden_loss=x", "--set: distill.hidden_loss = 'x', expected mse or cosine"},
      {"distill.attention_loss=x", "--set: distill.attention_loss = 'x', expected kl, mse or relation"},
      {"distill.head_mismatch=x", "--set: distill.head_mismatch = 'x', expected refuse or average"},
      {"student.kind=x", "--set: student.kind = 'x', expected bert, bert_mlm, mlp or deep_linear"},
      {"store.dtype=x", "--set: store.dtype = 'x', expected float16 or float32"},
      {"teacher.precision=fp8", "--set: teacher.precision = 'fp8', expected fp32, bf16, fp16 or auto"},
      {"train.batch_size=4.5", "--set: train.batch_size = '4.5' is not an integer"},
      {"store.verify=yes", "--set: store.verify = 'yes' is not true or false"},
  };
  for (const auto& [assignment, message] : bad)
    EXPECT_EQ(test::error_of([&] { apply_override(c, assignment); }), message);
  const auto msg = load_error("train:\n  optimizer: adam\n");
  EXPECT_NE(msg.find("c.yaml: train.optimizer = 'adam', expected adamw or sgd"), std::string::npos) << msg;
  // A value set in code is held to the same choices.
  RunConfig d;
  d.data.path = "d.h5";
  d.train.precision = Precision::kFp16;
  EXPECT_EQ(
      test::error_of([&] { validate_config(d); }),
      "train.precision = 'fp16', expected auto, fp32 or bf16 (fp16 training would need loss scaling, which distill "
      "does not do)");
  EXPECT_STREQ(name(d.train.precision), "fp16");
}

TEST(Config, PerFieldChecksKeepTheirMessages) {
  const std::pair<const char*, const char*> bad[] = {
      {"train.batch_size=0", "train.batch_size must be positive, got 0"},
      {"train.lr=-0.5", "train.lr must be positive, got -0.5"},
      {"train.log_every=0", "train.* counts must be non-negative (log_every and eval_batch_size positive)"},
      {"train.warmup_steps=-1", "train.* counts must be non-negative (log_every and eval_batch_size positive)"},
      {"train.weight_decay=-0.5",
       "train.max_grad_norm must be >= 0 and train.weight_decay >= 0 (or -1 for the optimizer's default)"},
      {"train.momentum=1", "train.momentum must be in [0, 1), got 1"},
      {"train.momentum=0.5", "train.momentum applies to train.optimizer: sgd"},
      {"train.prefetch=-1", "train.bucket_mb and train.comm_timeout must be positive, train.prefetch >= 0"},
      {"train.max_skipped_steps=-1", "train.max_skipped_steps must be >= 0, got -1"},
      {"train.threads=5000",
       "train.threads = 5000 exceeds 1024 threads per rank; 0 sizes the pools from the cores of the node"},
      {"distill.temperature=0", "distill.temperature must be > 0, got 0"},
      {"distill.beta=-1", "distill.alpha = 0.5 and distill.beta = -1 must be >= 0 and not both 0"},
      {"distill.attention_weight=-1", "distill.hidden_weight and distill.attention_weight must be >= 0"},
      {"student.num_labels=-1", "student.num_labels must be >= 0, got -1"},
      {"store.shard_size=0", "store.shard_size must be positive, got 0"},
      {"store.window=0", "store.topk must be >= 0 (0 = default), store.max_bytes and store.window positive"},
      {"teacher.ranks=-1", "teacher.ranks must be >= 0 and teacher.stream_timeout positive"},
      {"teacher.batch_size=0", "teacher.batch_size must be positive"},
      {"teacher.online=true", "teacher.online needs teacher.path"},
      {"data.path=", "data.path is empty; point it at a dataset.h5"},
  };
  for (const auto& [assignment, message] : bad) {
    RunConfig c;
    c.data.path = "d.h5";
    apply_override(c, assignment);
    EXPECT_EQ(test::error_of([&] { validate_config(c); }), message) << assignment;
  }
  ModelConfig m;
  m.num_labels = -2;
  EXPECT_EQ(test::error_of([&] { m.validate("model"); }), "model.num_labels must be >= 0, got -2");
}

TEST(ConfigHelp, ListsEveryKeyOnce) {
  const auto keys = config_keys();
  EXPECT_EQ(keys.size(), 84u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());
  const auto table = config_help_table();
  for (const auto& k : keys) EXPECT_NE(table.find("| `" + k + "` |"), std::string::npos) << k;
  EXPECT_NE(table.find("| `train.optimizer` | adamw or sgd | `adamw` |"), std::string::npos) << table;
  EXPECT_NE(table.find("| `train.lr` | number | `0.0005` |"), std::string::npos) << table;
}

// README.md carries config_help_table() between its config-table markers.
TEST(ConfigHelp, ReadmeTableIsTheGeneratedOne) {
  const auto path = test::fixture("../../README.md");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::vector<std::string> readme;
  for (std::string line; std::getline(in, line);) readme.push_back(line);
  std::size_t begin = 0, end = 0;
  for (std::size_t i = 0; i < readme.size(); ++i) {
    if (readme[i] == "<!-- config-table:begin -->") begin = i + 1;
    if (readme[i] == "<!-- config-table:end -->") end = i;
  }
  ASSERT_TRUE(begin > 0 && end >= begin) << path << " lacks the config-table markers";
  while (begin < end && readme[begin].empty()) ++begin;
  while (end > begin && readme[end - 1].empty()) --end;
  const auto want = lines_of(config_help_table());
  for (std::size_t i = 0; i < std::max(want.size(), end - begin); ++i) {
    const std::string have = begin + i < end ? readme[begin + i] : "(end of table)";
    const std::string expected = i < want.size() ? want[i] : "(end of table)";
    ASSERT_EQ(have, expected) << "README.md line " << begin + i + 1
                              << " differs from config_help_table(); paste the table `distill train --help-config` "
                                 "prints between the markers";
  }
}
