#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "distill/train/checkpoint.h"
#include "distill/util/error.h"
#include "test_util.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {
Checkpoint make(std::int64_t step) {
  Checkpoint c;
  c.state.step = step;
  c.state.epoch = step / 10;
  c.state.epoch_step = step % 10;
  c.state.config_hash = "h";
  c.model.tensors["w"] = {"U8", {1}, std::string(1, static_cast<char>(step))};
  return c;
}
}  // namespace

TEST(Checkpoint, LatestNamesTheNewestCompleteOneAndOldOnesAreDropped) {
  const auto root = test::temp_dir("ckpt");
  EXPECT_FALSE(load_latest_checkpoint(root).has_value());
  for (int s : {5, 10, 15}) save_checkpoint(root, make(s), 2);
  EXPECT_EQ(list_checkpoints(root), (std::vector<std::string>{"step-00000010", "step-00000015"}));
  // A crash mid-write leaves a temporary directory; it is neither listed nor loaded.
  fs::create_directories(fs::path(root) / "step-00000020.tmp-123");
  auto c = load_latest_checkpoint(root);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->state.step, 15);
  EXPECT_EQ(c->state.epoch, 1);
  EXPECT_EQ(c->state.epoch_step, 5);
  EXPECT_EQ(c->model.tensors.at("w").bytes, std::string(1, '\x0f'));
  EXPECT_EQ(list_checkpoints(root).size(), 2u);
  // `latest` naming a missing directory is an error that names it.
  std::ofstream(fs::path(root) / "latest") << "step-00000099\n";
  auto msg = test::error_of([&] { load_latest_checkpoint(root); });
  EXPECT_NE(msg.find("step-00000099"), std::string::npos) << msg;
}
