// GradReducer over thread ranks: the gradients it leaves in .grad() are the mean over ranks of each
// rank's own gradient, computed here with plain backward passes, for blocking and non-blocking
// reduction and buckets of one parameter, several parameters and everything.
#include <gtest/gtest.h>

#include <tuple>

#include "distill/train/reducer.h"
#include "ranks.h"

using namespace distill;
using distill::test::run_ranks;
using distill::test::wave;

namespace {

// Three layers whose gradients differ by rank; weights and inputs are fixed formulas.
struct Net {
  std::vector<torch::Tensor> params;
  Net() {
    double phase = 0;
    for (auto shape : std::vector<std::vector<std::int64_t>>{{16, 8}, {16}, {32, 16}, {32}, {4, 32}})
      params.push_back((0.3 * wave(shape, phase += 1.0)).requires_grad_(true));
  }
  torch::Tensor loss(int rank, int micro) const {
    auto x = wave({5, 8}, 0.5 + 7.0 * rank + micro);
    auto h = torch::relu(torch::matmul(x, params[0].t()) + params[1]);
    h = torch::tanh(torch::matmul(h, params[2].t()) + params[3]);
    return torch::matmul(h, params[4].t()).pow(2).mean();
  }
};

// The mean over `world` ranks of the gradients of loss(rank, 0) + ... + loss(rank, micros - 1).
std::vector<torch::Tensor> mean_gradient(int world, int micros) {
  std::vector<torch::Tensor> sum;
  for (int r = 0; r < world; ++r) {
    Net n;
    torch::Tensor l = n.loss(r, 0);
    for (int m = 1; m < micros; ++m) l = l + n.loss(r, m);
    l.backward();
    for (std::size_t i = 0; i < n.params.size(); ++i)
      if (r == 0)
        sum.push_back(n.params[i].grad().clone());
      else
        sum[i] += n.params[i].grad();
  }
  for (auto& g : sum) g /= world;
  return sum;
}

void expect_near(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want, int rank) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].defined()) << "parameter " << i << " on rank " << rank << " has no gradient";
    const double err = (got[i] - want[i]).abs().max().item<double>();
    EXPECT_LT(err, 1e-6) << "parameter " << i << " on rank " << rank;
  }
}

struct Case {
  int ranks;
  bool blocking;
  std::int64_t first_bucket_bytes, bucket_bytes;
};

class ThreadReducer : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(ThreadReducer, AveragesTheRanksGradients) {
  const Case k = GetParam();
  const auto want = mean_gradient(k.ranks, 1);
  run_ranks(k.ranks, [&](Communicator& c) {
    Net net;
    GradReducer red(c, net.params, BucketOptions{k.first_bucket_bytes, k.bucket_bytes, k.blocking});
    for (int step = 0; step < 3; ++step) {
      red.prepare();
      net.loss(c.rank(), 0).backward();
      red.finish();
      for (int n : red.arrivals()) EXPECT_EQ(n, 1);
      std::vector<torch::Tensor> got;
      for (auto& p : net.params) got.push_back(p.grad());
      expect_near(got, want, c.rank());
    }
  });
}

TEST_P(ThreadReducer, MicroBatchesReduceOnlyOnTheLast) {
  const Case k = GetParam();
  const auto want = mean_gradient(k.ranks, 2);
  run_ranks(k.ranks, [&](Communicator& c) {
    Net net;
    GradReducer red(c, net.params, BucketOptions{k.first_bucket_bytes, k.bucket_bytes, k.blocking});
    red.prepare(false);
    net.loss(c.rank(), 0).backward();
    EXPECT_EQ(red.finish(), 0.0);
    red.prepare(true);
    net.loss(c.rank(), 1).backward();
    red.finish();
    for (int n : red.arrivals()) EXPECT_EQ(n, 2);
    std::vector<torch::Tensor> got;
    for (auto& p : net.params) got.push_back(p.grad());
    expect_near(got, want, c.rank());
  });
}

// Bucket sizes: one parameter per bucket, a few per bucket, and one bucket for all.
INSTANTIATE_TEST_SUITE_P(Ranks, ThreadReducer,
                         ::testing::Values(Case{2, false, 4, 4}, Case{2, false, 64, 600},
                                           Case{2, false, 1 << 20, 25 << 20}, Case{2, true, 4, 4},
                                           Case{2, true, 64, 600}, Case{2, true, 1 << 20, 25 << 20},
                                           Case{4, false, 4, 4}, Case{4, false, 64, 600},
                                           Case{4, false, 1 << 20, 25 << 20}, Case{4, true, 4, 4},
                                           Case{4, true, 64, 600}, Case{4, true, 1 << 20, 25 << 20}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return "np" + std::to_string(i.param.ranks) +
                                  (i.param.blocking ? "_blocking_" : "_nonblocking_") +
                                  std::to_string(i.param.bucket_bytes) + "B";
                         });

TEST(ThreadReducerBuckets, OneEachSomeAndAll) {
  Net net;
  auto one_each = assign_buckets({512, 64, 2048, 128, 512}, BucketOptions{4, 4});
  EXPECT_EQ(one_each.size(), net.params.size());
  EXPECT_GT(assign_buckets({512, 64, 2048, 128, 512}, BucketOptions{64, 600}).size(), 2u);
  EXPECT_EQ(assign_buckets({512, 64, 2048, 128, 512}, BucketOptions{1 << 20, 25 << 20}).size(), 1u);
}
