#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "distill/data/sampler.h"
#include "test_util.h"

using namespace distill;

TEST(SplitMix64, MatchesReferenceStream) {
  // Reference values of splitmix64 seeded with 1234567 (Vigna's published C code).
  SplitMix64 r(1234567);
  EXPECT_EQ(r.next(), 6457827717110365317ull);
  EXPECT_EQ(r.next(), 3203168211198807973ull);
  EXPECT_EQ(r.next(), 9817491932198370423ull);
}

TEST(Sampler, LiteralIndicesWithoutShuffle) {
  // n = 10, batch 2, world 2: 3 steps per epoch, the last wraps around to 0, 1.
  DistributedSampler r0(10, 2, 0, 2, 7, false), r1(10, 2, 1, 2, 7, false);
  EXPECT_EQ(r0.steps_per_epoch(), 3);
  EXPECT_EQ(r1.steps_per_epoch(), 3);
  EXPECT_EQ(r0.indices({0, 0}), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(r1.indices({0, 0}), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(r0.indices({0, 2}), (std::vector<std::int64_t>{8, 9}));
  EXPECT_EQ(r1.indices({0, 2}), (std::vector<std::int64_t>{0, 1}));
}

TEST(Sampler, EpochIsAPermutationCoveredByAllRanks) {
  const std::int64_t n = 103, batch = 4;
  for (int world : {1, 2, 3}) {
    std::multiset<std::int64_t> seen;
    std::int64_t steps = -1;
    for (int r = 0; r < world; ++r) {
      DistributedSampler s(n, batch, r, world, 99);
      if (steps >= 0) {
        EXPECT_EQ(s.steps_per_epoch(), steps) << "ranks must run the same number of steps";
      }
      steps = s.steps_per_epoch();
      for (std::int64_t k = 0; k < steps; ++k) {
        for (auto i : s.indices({1, k})) seen.insert(i);
      }
    }
    EXPECT_EQ(steps, (n + world * batch - 1) / (world * batch));
    std::set<std::int64_t> distinct(seen.begin(), seen.end());
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(n)) << "world " << world;
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(steps * world * batch));
  }
}

TEST(Sampler, OrderIsPureFunctionOfSeedAndEpoch) {
  EXPECT_EQ(epoch_order(50, 5, 2), epoch_order(50, 5, 2));
  EXPECT_NE(epoch_order(50, 5, 2), epoch_order(50, 5, 3));
  EXPECT_NE(epoch_order(50, 5, 2), epoch_order(50, 6, 2));
  // A resumed sampler at a cursor gives the same indices as one that walked there.
  DistributedSampler a(37, 3, 1, 2, 11), b(37, 3, 1, 2, 11);
  Cursor c;
  for (int k = 0; k < 9; ++k) c = a.advance(c);
  EXPECT_EQ(c.epoch, 1);
  EXPECT_EQ(c.step, 2);
  EXPECT_EQ(a.indices(c), b.indices({1, 2}));
}

TEST(Sampler, FullBatchSplitsTheRowsAmongRanks) {
  // n = 5, batch 8 >= n, world 2: rank 0 takes rows [0, 2), rank 1 rows [2, 5), at every step.
  DistributedSampler r0(5, 8, 0, 2, 7), r1(5, 8, 1, 2, 7);
  EXPECT_TRUE(r0.full_batch());
  EXPECT_EQ(r0.indices({0, 0}), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(r1.indices({0, 0}), (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(r1.indices({3, 0}), (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(r0.global_batch(), 5);
  EXPECT_EQ(r1.global_batch(), 5);
}

TEST(Sampler, FullBatchWeightsEachRankByItsShare) {
  // Shares rows * world / n: 2 * 2 / 5 and 3 * 2 / 5; their mean over the ranks is 1.
  DistributedSampler r0(5, 8, 0, 2, 7), r1(5, 8, 1, 2, 7);
  EXPECT_DOUBLE_EQ(r0.share(), 0.8);
  EXPECT_DOUBLE_EQ(r1.share(), 1.2);
  DistributedSampler one(5, 5, 0, 1, 7);
  EXPECT_TRUE(one.full_batch());
  EXPECT_EQ(one.share(), 1.0);
  DistributedSampler minibatch(10, 2, 1, 2, 7);
  EXPECT_FALSE(minibatch.full_batch());
  EXPECT_EQ(minibatch.share(), 1.0);
  EXPECT_EQ(minibatch.global_batch(), 4);
}

TEST(Sampler, FullBatchRunsOneStepPerEpoch) {
  DistributedSampler s(5, 8, 1, 2, 7);
  EXPECT_EQ(s.steps_per_epoch(), 1);
  Cursor c;
  c = s.advance(c);
  EXPECT_EQ(c.epoch, 1);
  EXPECT_EQ(c.step, 0);
  c = s.advance(c);
  EXPECT_EQ(c.epoch, 2);
  EXPECT_EQ(c.step, 0);
}

TEST(Sampler, FullBatchRefusesARankWithoutRows) {
  // n = 2 on 3 ranks: rank 0 would take rows [0, 0).
  EXPECT_EQ(test::error_of([] { DistributedSampler(2, 4, 0, 3, 7); }),
            "full-batch training of 2 examples on 3 ranks leaves rank 0 without examples; use fewer ranks");
  DistributedSampler r2(2, 4, 2, 3, 7);
  EXPECT_EQ(r2.indices({0, 0}), (std::vector<std::int64_t>{1}));
}

// Note [lazy rows]: the block shuffle is a permutation of the split, each window of positions
// draws on window x block rows from `window` blocks, and small splits keep the full permutation.
TEST(Sampler, BlockShuffleIsAPermutationReadWindowByWindow) {
  const std::int64_t n = 10000, batch = 8, block = 100, window = 4;
  for (int world : {1, 2, 3}) {
    std::vector<int> seen(n, 0);
    for (int r = 0; r < world; ++r) {
      DistributedSampler s(n, batch, r, world, 5, true, block, window);
      ASSERT_TRUE(s.block_shuffle());
      // The global order of positions: rank r's batch at step k holds positions (k W + r) B + i.
      for (std::int64_t k = 0; k < s.steps_per_epoch(); ++k) {
        const auto idx = s.indices({1, k});
        for (std::int64_t i = 0; i < batch; ++i) {
          const std::int64_t pos = (k * world + r) * batch + i;
          if (pos < n) ++seen[idx[i]];
        }
      }
    }
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "row " << i << " with " << world << " ranks";
  }
  // One rank: positions [w * 400, (w + 1) * 400) come from exactly 4 blocks, shuffled within.
  DistributedSampler s(n, 400, 0, 1, 5, true, block, window);
  bool shuffled = false;
  for (std::int64_t w = 0; w < n / 400; ++w) {
    const auto idx = s.indices({0, w});
    std::set<std::int64_t> blocks;
    for (auto r : idx) blocks.insert(r / block);
    EXPECT_EQ(blocks.size(), 4u) << "window " << w;
    shuffled = shuffled || !std::is_sorted(idx.begin(), idx.end());
  }
  EXPECT_TRUE(shuffled);
  // Deterministic, different per epoch.
  DistributedSampler a(n, 16, 1, 2, 5, true, block, window), b(n, 16, 1, 2, 5, true, block, window);
  EXPECT_EQ(a.indices({2, 37}), b.indices({2, 37}));
  EXPECT_NE(a.indices({2, 37}), a.indices({3, 37}));
  // A split of at most one window: the full permutation (the order before block shuffles existed).
  DistributedSampler small(400, 8, 0, 1, 5, true, block, window), full(400, 8, 0, 1, 5);
  EXPECT_FALSE(small.block_shuffle());
  for (std::int64_t k = 0; k < 50; ++k) EXPECT_EQ(small.indices({0, k}), full.indices({0, k}));
}
