#include <gtest/gtest.h>
#include <torch/torch.h>

#include "distill/model/weights.h"
#include "distill/train/optim.h"
#include "distill/train/reducer.h"
#include "test_util.h"

using namespace distill;

TEST(AdamW, MatchesTorchOptimAdamW) {
  auto ref = load_safetensors(test::fixture("adamw_ref.safetensors"));
  auto T = [&](const std::string& k) { return from_blob(ref.tensors.at(k)); };
  auto w = T("w0").clone(), b = T("b0").clone();
  AdamW opt({{"layer.weight", w}, {"layer.bias", b}}, OptimOptions{0.9, 0.999, 1e-8, 0.1});
  for (int k = 0; k < 3; ++k) {
    w.mutable_grad() = T("gw" + std::to_string(k));
    b.mutable_grad() = T("gb" + std::to_string(k));
    opt.step(0.01);
  }
  EXPECT_LE((w - T("w3")).abs().max().item<float>(), 2e-6);
  EXPECT_LE((b - T("b3")).abs().max().item<float>(), 2e-6);
  // State round trip continues identically.
  auto w2 = w.clone(), b2 = b.clone();
  AdamW again({{"layer.weight", w2}, {"layer.bias", b2}}, OptimOptions{0.9, 0.999, 1e-8, 0.1});
  again.load_state(opt.state(), "state");
  EXPECT_EQ(again.steps(), 3);
  auto g = torch::randn({3, 4}), gb = torch::randn({4});
  w.mutable_grad() = g.clone();
  b.mutable_grad() = gb.clone();
  w2.mutable_grad() = g.clone();
  b2.mutable_grad() = gb.clone();
  opt.step(0.01);
  again.step(0.01);
  EXPECT_TRUE(torch::equal(w, w2));
  EXPECT_TRUE(torch::equal(b, b2));
}

TEST(Schedule, LinearWarmupThenDecay) {
  EXPECT_DOUBLE_EQ(linear_schedule(1.0, 0, 100, 10), 0.1);
  EXPECT_DOUBLE_EQ(linear_schedule(1.0, 9, 100, 10), 1.0);
  EXPECT_DOUBLE_EQ(linear_schedule(1.0, 10, 100, 10), 1.0);
  EXPECT_DOUBLE_EQ(linear_schedule(1.0, 55, 100, 10), 0.5);
  EXPECT_DOUBLE_EQ(linear_schedule(1.0, 99, 100, 10), 1.0 / 90);
}

TEST(Clip, ScalesToMaxNorm) {
  auto a = torch::zeros({2}), b = torch::zeros({1});
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8f, 1e-5);
}

TEST(Buckets, ReverseOrderSmallFirstThenBudget) {
  // bytes of parameters 0..4; reverse order; first bucket closes at >= 8 bytes, later at >= 16.
  auto b = assign_buckets({4, 4, 8, 100, 4}, BucketOptions{8, 16});
  EXPECT_EQ(b, (std::vector<std::vector<std::size_t>>{{4, 3}, {2, 1, 0}}));
  auto one = assign_buckets({4, 4, 4}, BucketOptions{1000, 1000});
  EXPECT_EQ(one, (std::vector<std::vector<std::size_t>>{{2, 1, 0}}));
  auto each = assign_buckets({4, 4, 4}, BucketOptions{1, 1});
  EXPECT_EQ(each, (std::vector<std::vector<std::size_t>>{{2}, {1}, {0}}));
}
