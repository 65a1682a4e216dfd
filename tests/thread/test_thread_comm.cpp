// The thread-rank communicator at 2, 3 and 4 ranks: expectations are closed forms in rank and world
// size, as in the MPI tier (tests/mpi/test_comm.cpp), plus the promises of Note [thread ranks]:
// reductions in rank order, refused mismatches, and no rank left waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "distill/util/error.h"
#include "ranks.h"
#include "test_util.h"

using namespace distill;
using distill::test::run_ranks;

namespace {

class ThreadComm : public ::testing::TestWithParam<int> {};

// Sum, max, min (and average for floating types) of v_r = r + 1 over W ranks, for dtype T.
template <typename T>
void check_reductions(Communicator& c, DType t) {
  const int w = c.size();
  const T mine = static_cast<T>(c.rank() + 1);
  T v[4] = {mine, mine, mine, mine};
  c.allreduce(&v[0], 1, t, ReduceOp::kSum);
  c.allreduce(&v[1], 1, t, ReduceOp::kMax);
  c.allreduce(&v[2], 1, t, ReduceOp::kMin);
  EXPECT_EQ(v[0], static_cast<T>(w * (w + 1) / 2));
  EXPECT_EQ(v[1], static_cast<T>(w));
  EXPECT_EQ(v[2], static_cast<T>(1));
  if (t == DType::kFloat32 || t == DType::kFloat64) {
    c.allreduce(&v[3], 1, t, ReduceOp::kAverage);
    EXPECT_EQ(v[3], static_cast<T>((w + 1) / 2.0));
  } else {
    // Refused on every rank before joining, as the MPI backend does: the group stays in step.
    EXPECT_THROW(c.allreduce(&v[3], 1, t, ReduceOp::kAverage), CommError);
  }
}

}  // namespace

TEST_P(ThreadComm, AllreduceEveryDTypeAndOp) {
  const int w = GetParam();
  run_ranks(w, [w](Communicator& c) {
    EXPECT_EQ(c.size(), w);
    check_reductions<float>(c, DType::kFloat32);
    check_reductions<double>(c, DType::kFloat64);
    check_reductions<std::int32_t>(c, DType::kInt32);
    check_reductions<std::int64_t>(c, DType::kInt64);
    check_reductions<std::uint8_t>(c, DType::kUInt8);
    // Many elements: element i of rank r is i * (r + 1); the sum is i * W (W + 1) / 2.
    std::vector<std::int64_t> v(1000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int64_t>(i) * (c.rank() + 1);
    c.allreduce(v.data(), v.size(), DType::kInt64, ReduceOp::kSum);
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], static_cast<std::int64_t>(i) * w * (w + 1) / 2) << i;
  });
}

TEST_P(ThreadComm, SumsInRankOrder) {
  // Float addition is not associative: only the fold ((v0 + v1) + v2) + v3 gives this result, on
  // every repetition whatever the thread timing.
  const float vals[4] = {1e8f, 1.0f, -1e8f, 3.0f};
  const int w = GetParam();
  float expected = vals[0];
  for (int r = 1; r < w; ++r) expected += vals[r];
  run_ranks(w, [&](Communicator& c) {
    for (int rep = 0; rep < 50; ++rep) {
      float v = vals[c.rank()];
      c.allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
      ASSERT_EQ(v, expected) << "repetition " << rep;
    }
  });
}

TEST_P(ThreadComm, BroadcastFromEveryRootAndAllgather) {
  run_ranks(GetParam(), [](Communicator& c) {
    const int r = c.rank(), w = c.size();
    for (int root = 0; root < w; ++root) {
      double x[2] = {r == root ? 2.5 * root : -1.0, r == root ? 7.0 : -1.0};
      c.broadcast(x, 2, DType::kFloat64, root);
      EXPECT_EQ(x[0], 2.5 * root);
      EXPECT_EQ(x[1], 7.0);
    }
    std::int32_t bad = 0;
    EXPECT_THROW(c.broadcast(&bad, 1, DType::kInt32, w), CommError);
    std::int64_t mine[2] = {r, 10 * r};
    std::vector<std::int64_t> all(2 * w);
    c.allgather(mine, all.data(), 2, DType::kInt64);
    for (int k = 0; k < w; ++k) {
      EXPECT_EQ(all[2 * k], k);
      EXPECT_EQ(all[2 * k + 1], 10 * k);
    }
    // In place: this rank's part already sits at its offset of the output.
    std::vector<float> inplace(w, -1.0f);
    inplace[r] = static_cast<float>(r * r);
    c.allgather(&inplace[r], inplace.data(), 1, DType::kFloat32);
    for (int k = 0; k < w; ++k) EXPECT_EQ(inplace[k], static_cast<float>(k * k));
    auto strs = c.allgather_string(std::string(r + 1, static_cast<char>('a' + r)));
    for (int k = 0; k < w; ++k) EXPECT_EQ(strs[k], std::string(k + 1, static_cast<char>('a' + k)));
    std::string s = r == 0 ? "from rank zero" : "";
    c.broadcast_string(s, 0);
    EXPECT_EQ(s, "from rank zero");
    c.barrier();
  });
}

TEST_P(ThreadComm, SplitKeepsKeyOrderAndNests) {
  run_ranks(GetParam(), [](Communicator& c) {
    const int r = c.rank(), w = c.size();
    // Even and odd ranks, in reverse order by key.
    auto half = c.split(r % 2, w - r);
    const int members = r % 2 == 0 ? (w + 1) / 2 : w / 2;
    EXPECT_EQ(half->size(), members);
    EXPECT_EQ(half->rank(), members - 1 - r / 2);
    EXPECT_EQ(half->local_size(), half->size());
    float v = static_cast<float>(r);
    half->allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
    float expected = 0;
    for (int k = r % 2; k < w; k += 2) expected += static_cast<float>(k);
    EXPECT_EQ(v, expected);
    // The halves' collectives interleave with the parent's without mixing.
    std::int32_t all = 1;
    c.allreduce(&all, 1, DType::kInt32, ReduceOp::kSum);
    EXPECT_EQ(all, w);
    auto alone = half->split(half->rank(), 0);
    EXPECT_EQ(alone->size(), 1);
    EXPECT_EQ(alone->rank(), 0);
    alone->barrier();
    half->barrier();
  });
}

TEST_P(ThreadComm, NonblockingReductionsCompleteInAnyWaitOrder) {
  run_ranks(GetParam(), [](Communicator& c) {
    const int r = c.rank(), w = c.size();
    std::vector<float> a(64, static_cast<float>(r)), b(3, 1.0f);
    double d = r;
    auto pa = c.iallreduce(a.data(), a.size(), DType::kFloat32, ReduceOp::kSum);
    auto pb = c.iallreduce(b.data(), b.size(), DType::kFloat32, ReduceOp::kAverage);
    auto pd = c.iallreduce(&d, 1, DType::kFloat64, ReduceOp::kMax);
    std::int32_t i = r;
    EXPECT_THROW(c.iallreduce(&i, 1, DType::kInt32, ReduceOp::kAverage), CommError);
    pd->wait();
    while (!pb->test()) std::this_thread::yield();
    pa->wait();
    EXPECT_TRUE(pa->test());
    EXPECT_EQ(d, w - 1.0);
    for (float x : b) EXPECT_EQ(x, 1.0f);
    for (float x : a) EXPECT_EQ(x, static_cast<float>(w * (w - 1) / 2));
    // A request dropped unwaited still completes before its buffer may go.
    {
      std::int64_t n = 1;
      auto dropped = c.iallreduce(&n, 1, DType::kInt64, ReduceOp::kSum);
    }
    c.barrier();
  });
}

TEST_P(ThreadComm, AgreementChecksAndLocalRanks) {
  run_ranks(GetParam(), [](Communicator& c) {
    const int r = c.rank(), w = c.size();
    EXPECT_EQ(c.local_size(), w);  // one process: one node
    EXPECT_EQ(c.local_rank(), r);
    EXPECT_FALSE(c.device_memory());
    EXPECT_NO_THROW(c.check_same("same", "config hash"));
    const std::string msg = distill::test::error_of([&] { c.check_same(r == w - 1 ? "odd" : "same", "config hash"); });
    EXPECT_NE(
        msg.find("config hash differs between ranks: rank 0 has same, rank " + std::to_string(w - 1) + " has odd"),
        std::string::npos)
        << msg;
    EXPECT_TRUE(c.any(r == w - 1));
    EXPECT_FALSE(c.any(false));
  });
}

TEST_P(ThreadComm, AThrowingRankEndsTheOthersCollectives) {
  const int w = GetParam();
  std::atomic<int> ended{0};
  try {
    run_ranks(w, [&](Communicator& c) {
      if (c.rank() == 1) throw DataError("rank one broke");
      try {
        for (;;) c.barrier();
      } catch (const CommError& e) {
        EXPECT_NE(std::string(e.what()).find("rank 1 of " + std::to_string(w) + " thread ranks failed: rank one broke"),
                  std::string::npos)
            << e.what();
        ++ended;
        throw;
      }
    });
    FAIL() << "expected the rank's exception";
  } catch (const DataError& e) {  // the first exception, not the others' CommError
    EXPECT_STREQ(e.what(), "rank one broke");
  }
  EXPECT_EQ(ended.load(), w - 1);
}

TEST_P(ThreadComm, ARankThatReturnsEarlyFailsTheOthers) {
  const int w = GetParam();
  const std::string msg = distill::test::error_of([&] {
    run_ranks(w, [](Communicator& c) {
      if (c.rank() == 0) return;
      c.barrier();
    });
  });
  EXPECT_NE(msg.find("barrier on rank"), std::string::npos) << msg;
  EXPECT_NE(msg.find(": rank 0 returned without joining it"), std::string::npos) << msg;
}

TEST_P(ThreadComm, MismatchedCollectivesFailOnEveryRank) {
  const int w = GetParam();
  std::atomic<int> refused{0};
  const std::string msg = distill::test::error_of([&] {
    run_ranks(w, [&](Communicator& c) {
      try {
        float v = 1.0f;
        if (c.rank() == w - 1)
          c.allreduce(&v, 1, DType::kFloat32, ReduceOp::kMax);
        else
          c.allreduce(&v, 1, DType::kFloat32, ReduceOp::kSum);
      } catch (const CommError&) {
        ++refused;
        throw;
      }
    });
  });
  EXPECT_EQ(refused.load(), w);
  EXPECT_NE(msg.find("called allreduce (sum) of 1 float32 elements"), std::string::npos) << msg;
  EXPECT_NE(msg.find("called allreduce (max) of 1 float32 elements"), std::string::npos) << msg;
}

TEST_P(ThreadComm, ACollectiveThatWaitsTooLongFails) {
  const int w = GetParam();
  ThreadRankOptions o;
  o.timeout_s = 0.1;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = distill::test::error_of([&] {
    run_ranks(
        w,
        [w](Communicator& c) {
          if (c.rank() == w - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
          c.barrier();
        },
        o);
  });
  // The last rank is missing (listed last; a slow start may add others).
  EXPECT_NE(msg.find("did not complete within 0.1 s: rank(s) "), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(w - 1) + " have not joined it"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

INSTANTIATE_TEST_SUITE_P(Ranks, ThreadComm, ::testing::Values(2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& i) { return "np" + std::to_string(i.param); });

TEST(ThreadRanks, OneRankAndBadArguments) {
  int calls = 0;
  run_ranks(1, [&](Communicator& c) {
    ++calls;
    EXPECT_EQ(c.size(), 1);
    float v = 3.0f;
    c.allreduce(&v, 1, DType::kFloat32, ReduceOp::kAverage);
    EXPECT_EQ(v, 3.0f);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(run_ranks(0, [](Communicator&) {}), ConfigError);
}
