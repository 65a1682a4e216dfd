#include <gtest/gtest.h>

#include <set>

#include "distill/data/sampler.h"

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
