// GradReducer over thread ranks: the gradients it leaves in .grad() are the mean over ranks of each
// rank's own gradient, computed here with plain backward passes, for blocking and non-blocking
// reduction and buckets of one parameter, several parameters and everything.
#include <gtest/gtest.h>

#include <mutex>
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

namespace {

// A lookup table (64 x 8) and a dense layer: rank r looks up rows `rows(r, micro)`; rank 2 looks up
// none (its table gradient never arrives). `spread` rows per lookup, so many rows make the reducer
// fall back to the dense reduction (Note [row-sparse gradients]).
struct Table {
  std::vector<torch::Tensor> params;
  std::int64_t spread;
  explicit Table(std::int64_t s) : spread(s) {
    params.push_back((0.3 * wave({64, 8}, 1.0)).requires_grad_(true));
    params.push_back((0.3 * wave({3, 8}, 2.0)).requires_grad_(true));
  }
  torch::Tensor loss(int rank, int micro) const {
    auto x = wave({4, 8}, 0.5 + rank + micro);
    if (rank != 2) {
      auto idx = (torch::arange(spread, torch::kInt64) * (5 + rank) + 3 * micro + rank) % 64;
      x = x + params[0].index_select(0, idx).sum(0);
    }
    return torch::matmul(torch::tanh(x), params[1].t()).pow(2).mean();
  }
};

std::vector<torch::Tensor> table_mean_gradient(int world, int micros, std::int64_t spread) {
  std::vector<torch::Tensor> sum;
  for (int r = 0; r < world; ++r) {
    Table n(spread);
    torch::Tensor l = n.loss(r, 0);
    for (int m = 1; m < micros; ++m) l = l + n.loss(r, m);
    l.backward();
    for (std::size_t i = 0; i < n.params.size(); ++i) {
      auto g = n.params[i].grad().defined() ? n.params[i].grad() : torch::zeros_like(n.params[i]);
      if (r == 0)
        sum.push_back(g.clone());
      else
        sum[i] += g;
    }
  }
  for (auto& g : sum) g /= world;
  return sum;
}

}  // namespace

// The table's gradient reduced row-sparsely equals the mean of the ranks' gradients, over 2 and 3
// ranks, with micro-batches, a rank that does not touch the table, and the dense fallback; with
// 2 ranks it is bit for bit the bucket reduction's.
TEST(ThreadReducerRowSparse, EqualsTheDenseMean) {
  for (int world : {2, 3})
    for (int micros : {1, 2})
      for (std::int64_t spread : {3, 40}) {
        const auto want = table_mean_gradient(world, micros, spread);
        std::vector<torch::Tensor> dense(2);
        std::mutex m;
        run_ranks(world, [&](Communicator& c) {
          for (bool sparse : {false, true}) {
            Table t(spread);
            BucketOptions o;
            if (sparse) o.row_sparse = {0};
            GradReducer red(c, t.params, o);
            EXPECT_EQ(red.sparse_params().size(), sparse ? 1u : 0u);
            for (int k = 0; k < micros; ++k) {
              red.prepare(k == micros - 1);
              t.loss(c.rank(), k).backward();
              red.finish();
            }
            std::vector<torch::Tensor> got{t.params[0].grad(), t.params[1].grad()};
            expect_near(got, want, c.rank());
            const bool fallback = spread * world * 2 >= 64;
            if (sparse) {
              EXPECT_EQ(red.sparse_rows_moved() == 0, fallback) << "spread " << spread;
            }
            std::lock_guard<std::mutex> g(m);
            if (!sparse && c.rank() == 0) dense[0] = got[0].clone();
            if (sparse && world == 2) {
              EXPECT_TRUE(torch::equal(got[0], dense[0])) << "rank " << c.rank();
            }
          }
        });
      }
}
