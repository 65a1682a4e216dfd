// Multi-rank tests of the MPI communicator: expectations are closed forms in rank and world size.
// Run under mpirun -np 2..4; every rank runs every test and all ranks agree on the verdict.
#include <gtest/gtest.h>

#include <numeric>

#include "distill/comm/mpi.h"
#include "distill/train/reducer.h"
#include "distill/util/error.h"

using namespace distill;

namespace {
Communicator* world = nullptr;
}

TEST(MpiComm, AllreduceSumAverageMaxMin) {
  const int r = world->rank(), w = world->size();
  std::vector<float> v = {static_cast<float>(r), 1.0f, static_cast<float>(r * r)};
  world->allreduce(v.data(), v.size(), DType::kFloat32, ReduceOp::kSum);
  EXPECT_EQ(v[0], w * (w - 1) / 2);
  EXPECT_EQ(v[1], w);
  EXPECT_EQ(v[2], (w - 1) * w * (2 * w - 1) / 6);
  std::vector<double> d = {static_cast<double>(r)};
  world->allreduce(d.data(), 1, DType::kFloat64, ReduceOp::kAverage);
  EXPECT_DOUBLE_EQ(d[0], (w - 1) / 2.0);
  std::int64_t mx = r, mn = r;
  world->allreduce(&mx, 1, DType::kInt64, ReduceOp::kMax);
  world->allreduce(&mn, 1, DType::kInt64, ReduceOp::kMin);
  EXPECT_EQ(mx, w - 1);
  EXPECT_EQ(mn, 0);
  EXPECT_THROW(world->allreduce(&mx, 1, DType::kInt64, ReduceOp::kAverage), CommError);
}

TEST(MpiComm, BroadcastAndAllgather) {
  const int r = world->rank(), w = world->size();
  std::int32_t x = r == w - 1 ? 42 : -1;
  world->broadcast(&x, 1, DType::kInt32, w - 1);
  EXPECT_EQ(x, 42);
  std::int64_t mine[2] = {r, 10 * r};
  std::vector<std::int64_t> all(2 * w);
  world->allgather(mine, all.data(), 2, DType::kInt64);
  for (int k = 0; k < w; ++k) {
    EXPECT_EQ(all[2 * k], k);
    EXPECT_EQ(all[2 * k + 1], 10 * k);
  }
  auto strs = world->allgather_string(std::string(r + 1, 'a' + r));
  for (int k = 0; k < w; ++k) EXPECT_EQ(strs[k], std::string(k + 1, 'a' + k));
  std::string s = r == 0 ? "from rank zero" : "";
  world->broadcast_string(s, 0);
  EXPECT_EQ(s, "from rank zero");
}

TEST(MpiComm, SplitIntoTeacherAndStudentGroups) {
  const int r = world->rank(), w = world->size();
  // Rank 0 is the teacher group; the rest are students.
  const int color = r == 0 ? 0 : 1;
  auto group = world->split(color, r);
  EXPECT_EQ(group->size(), r == 0 ? 1 : w - 1);
  EXPECT_EQ(group->rank(), r == 0 ? 0 : r - 1);
  float v = 1.0f;
  group->allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
  EXPECT_EQ(v, static_cast<float>(group->size()));
  group->barrier();
}

TEST(MpiComm, AgreementChecks) {
  const int r = world->rank(), w = world->size();
  EXPECT_NO_THROW(world->check_same("same", "config hash"));
  if (w > 1) {
    try {
      world->check_same(r == w - 1 ? "odd" : "same", "config hash");
      FAIL() << "expected a mismatch on every rank";
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find("config hash differs between ranks"), std::string::npos);
    }
  }
  EXPECT_EQ(world->any(r == w - 1), true);
  EXPECT_EQ(world->any(false), false);
  EXPECT_EQ(world->local_size(), w);  // one node
}

namespace {
// A small network whose gradients differ by rank: three linear layers and a bias-free output.
struct Net {
  std::vector<torch::Tensor> params;
  Net() {
    torch::manual_seed(11);
    for (auto shape : std::vector<std::vector<std::int64_t>>{{16, 8}, {16}, {32, 16}, {32}, {4, 32}})
      params.push_back(torch::randn(shape).requires_grad_(true));
  }
  torch::Tensor loss(int rank, int micro) {
    torch::manual_seed(100 + 7 * rank + micro);
    auto x = torch::randn({5, 8});
    auto h = torch::relu(torch::matmul(x, params[0].t()) + params[1]);
    h = torch::tanh(torch::matmul(h, params[2].t()) + params[3]);
    return torch::matmul(h, params[4].t()).pow(2).mean();
  }
};
}  // namespace

TEST(GradReducer, BucketsEqualAFlatAllreduceBitForBit) {
  const int r = world->rank();
  Net a, b;
  // Reference: plain backward, one flat averaged allreduce.
  a.loss(r, 0).backward();
  std::vector<torch::Tensor> parts;
  for (auto& p : a.params) parts.push_back(p.grad().reshape(-1));
  auto flat = torch::cat(parts).contiguous();
  world->allreduce(flat.data_ptr<float>(), flat.numel(), DType::kFloat32, ReduceOp::kAverage);
  // Reducer with tiny buckets so that several reductions start during backward.
  GradReducer red(*world, b.params, BucketOptions{64, 600});
  ASSERT_GT(red.buckets().size(), 2u);
  for (int step = 0; step < 2; ++step) {
    for (auto& p : b.params) p.mutable_grad() = torch::Tensor();
    red.prepare();
    b.loss(r, 0).backward();
    red.finish();
    for (int n : red.arrivals()) EXPECT_EQ(n, 1);
    std::int64_t off = 0;
    for (auto& p : b.params) {
      EXPECT_TRUE(torch::equal(p.grad().reshape(-1), flat.narrow(0, off, p.numel())));
      off += p.numel();
    }
  }
}

TEST(GradReducer, MicroBatchesReduceOnlyOnTheLast) {
  const int r = world->rank();
  Net a, b;
  (a.loss(r, 0) + a.loss(r, 1)).backward();
  std::vector<torch::Tensor> parts;
  for (auto& p : a.params) parts.push_back(p.grad().reshape(-1));
  auto flat = torch::cat(parts).contiguous();
  world->allreduce(flat.data_ptr<float>(), flat.numel(), DType::kFloat32, ReduceOp::kAverage);
  GradReducer red(*world, b.params, BucketOptions{64, 600});
  red.prepare(false);
  b.loss(r, 0).backward();
  EXPECT_EQ(red.finish(), 0.0);
  red.prepare(true);
  b.loss(r, 1).backward();
  red.finish();
  for (int n : red.arrivals()) EXPECT_EQ(n, 2);
  std::int64_t off = 0;
  for (auto& p : b.params) {
    EXPECT_TRUE(torch::allclose(p.grad().reshape(-1), flat.narrow(0, off, p.numel()), 1e-6, 1e-7));
    off += p.numel();
  }
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mpi_init(&argc, &argv);
  auto comm = make_world_communicator();
  world = comm.get();
  if (comm->rank() != 0) ::testing::GTEST_FLAG(brief) = true;
  int failed = RUN_ALL_TESTS() != 0;
  const bool any_failed = comm->any(failed != 0);
  comm.reset();
  mpi_finalize();
  return any_failed ? 1 : 0;
}
