// The GPU path through LibTorch: gradient buckets over NCCL, autocast, teachers on the device.
// Skipped where this LibTorch has no CUDA or no GPU is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "distill/model/bert.h"
#include "distill/model/teacher_model.h"
#include "distill/train/reducer.h"
#include "distill/comm/device.h"
#include "distill/model/device.h"

namespace distill {
namespace {

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA LibTorch or no GPU"

ModelConfig small_bert() {
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden = 64;
  c.layers = 2;
  c.heads = 4;
  c.intermediate = 128;
  c.max_positions = 32;
  c.num_labels = 3;
  c.dropout = 0;
  c.attention_dropout = 0;
  return c;
}

ModelInputs random_inputs(long b, long s, const c10::Device& d) {
  ModelInputs in;
  in.input_ids = torch::randint(1, 100, {b, s}, torch::kInt64).to(d);
  in.attention_mask = torch::ones({b, s}, torch::kInt64).to(d);
  in.token_type_ids = torch::zeros({b, s}, torch::kInt64).to(d);
  return in;
}

// One rank: bucketed NCCL reduction must leave every gradient exactly as backward made it, with
// buckets small enough that several are reduced while backward runs.
TEST(TorchGpu, BucketedReductionOverNcclKeepsGradients) {
  REQUIRE_CUDA();
  const c10::Device d(c10::kCUDA, 0);
  auto host = make_local_communicator();
  auto comm = make_device_communicator(*host, d, 60);
  ASSERT_TRUE(comm && comm->device_memory());
  torch::manual_seed(3);
  auto model = make_network(small_bert());
  model->to(d);
  std::vector<torch::Tensor> params = model->parameters();
  auto in = random_inputs(8, 16, d);
  auto loss = [&] { return model->forward(in).logits.pow(2).mean(); };
  loss().backward();
  std::vector<torch::Tensor> expect;
  for (auto& p : params) expect.push_back(p.grad().clone());
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  BucketOptions o;
  o.first_bucket_bytes = 4096;
  o.bucket_bytes = 64 << 10;
  GradReducer r(*comm, params, o);
  ASSERT_GT(r.buckets().size(), 3u);
  r.prepare(true);
  loss().backward();
  r.finish();
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(r.arrivals()[i], 1);
    EXPECT_TRUE(torch::equal(params[i].grad(), expect[i])) << i;
  }
}

TEST(TorchGpu, AutocastRunsMatrixProductsInBf16) {
  REQUIRE_CUDA();
  const c10::Device d(c10::kCUDA, 0);
  auto x = torch::randn({16, 32}, d), w = torch::randn({32, 8}, d);
  {
    Autocast cast(d, c10::ScalarType::BFloat16);
    EXPECT_EQ(torch::matmul(x, w).scalar_type(), torch::kBFloat16);
    {
      Autocast fp32(d, c10::ScalarType::Float);  // an fp32 teacher inside a bf16 step
      EXPECT_EQ(torch::matmul(x, w).scalar_type(), torch::kFloat32);
    }
    EXPECT_EQ(torch::matmul(x, w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::matmul(x, w).scalar_type(), torch::kFloat32);
  torch::manual_seed(5);
  auto model = make_network(small_bert());
  model->to(d);
  model->eval();
  torch::NoGradGuard g;
  auto in = random_inputs(4, 16, d);
  auto full = model->forward(in).logits;
  torch::Tensor low;
  {
    Autocast cast(d, c10::ScalarType::BFloat16);
    low = model->forward(in).logits.to(torch::kFloat32);
  }
  const double rel = ((low - full).norm() / full.norm()).item<double>();
  EXPECT_LT(rel, 2e-2);  // bf16 operands: 1e-3 .. 1e-2
  EXPECT_GT(rel, 0.0);   // it did run in lower precision
}

TEST(TorchGpu, TeacherOnTheGpuTakesHostInputs) {
  REQUIRE_CUDA();
  const c10::Device d(c10::kCUDA, 0);
  torch::manual_seed(7);
  auto net = make_network(small_bert());
  auto cpu_logits = [&] {
    torch::NoGradGuard g;
    net->eval();
    return net->forward(random_inputs(4, 16, c10::Device(c10::kCPU))).logits;
  };
  torch::manual_seed(11);
  auto want = cpu_logits();
  auto teacher = make_network_teacher(net);
  teacher->place(d, c10::ScalarType::Float);
  torch::manual_seed(11);
  torch::NoGradGuard g;
  auto got = teacher->forward(random_inputs(4, 16, c10::Device(c10::kCPU))).logits;
  EXPECT_TRUE(got.is_cuda());
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got.cpu(), want, 1e-4, 1e-4));
}

}  // namespace
}  // namespace distill
