#include <gtest/gtest.h>

#include <fstream>

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
