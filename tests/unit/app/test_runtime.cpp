// Devices, precision and the loader thread, as seen without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>

#include "distill/app/commands.h"
#include "distill/data/loader.h"
#include "distill/data/prefetch.h"
#include "distill/model/device.h"
#include "distill/util/error.h"

namespace distill {
namespace {

TEST(Device, ResolvesSpecsAndNamesTheKeyInErrors) {
  EXPECT_TRUE(resolve_device("cpu", 3, "train.device").is_cpu());
  if (!cuda_available()) {
    EXPECT_TRUE(resolve_device("auto", 0, "train.device").is_cpu());
    try {
      resolve_device("cuda", 0, "teacher.device");
      FAIL();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("teacher.device: cuda asks for a GPU"), std::string::npos) << e.what();
    }
  }
  try {
    resolve_device("tpu", 0, "train.device");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.device = 'tpu', expected auto, cpu, cuda or cuda:N"),
              std::string::npos);
  }
  EXPECT_EQ(parse_precision("bf16", "x"), c10::ScalarType::BFloat16);
  EXPECT_EQ(parse_precision("fp16", "x"), c10::ScalarType::Half);
  EXPECT_THROW(parse_precision("fp8", "train.precision"), ConfigError);
}

Batch numbered(std::int64_t i) {
  Batch b;
  b.labels = torch::full({2}, i, torch::kInt64);
  return b;
}

TEST(Prefetcher, DeliversEveryStepInOrder) {
  for (int depth : {1, 2, 5}) {
    Prefetcher p(numbered, 3, 40, depth);
    for (std::int64_t i = 3; i < 40; ++i) {
      double waited = -1;
      auto b = p.next(&waited);
      EXPECT_GE(waited, 0.0);
      EXPECT_EQ(b.labels[0].item<std::int64_t>(), i);
    }
    EXPECT_THROW(p.next(), Error);  // past the last step
  }
}

TEST(Prefetcher, RethrowsTheProducersErrorAtItsStep) {
  Prefetcher p(
      [](std::int64_t i) -> Batch {
        if (i == 2) throw StoreError("shard 2 is gone");
        return numbered(i);
      },
      0, 10);
  EXPECT_EQ(p.next().labels[0].item<std::int64_t>(), 0);
  EXPECT_EQ(p.next().labels[0].item<std::int64_t>(), 1);
  EXPECT_THROW(p.next(), StoreError);
}

TEST(Prefetcher, StopsCleanlyWithBatchesLeft) {
  std::atomic<int> made{0};
  {
    Prefetcher p(
        [&](std::int64_t i) {
          ++made;
          return numbered(i);
        },
        0, 1000, 2);
    p.next();
  }
  EXPECT_LE(made.load(), 4);  // bounded: never more than depth ahead
}

// A features split whose row i holds label i.
DataSplit numbered_split(std::int64_t n) {
  DataSplit s;
  s.n = n;
  s.dim = 1;
  for (std::int64_t i = 0; i < n; ++i) {
    s.labels.push_back(i);
    s.example_id.push_back(i);
    s.features.push_back(static_cast<float>(i));
  }
  return s;
}

TEST(Loader, WalksTheSamplersCursorsWithOrWithoutALoaderThread) {
  const auto split = numbered_split(10);
  DistributedSampler sampler(10, 3, 1, 2, 5);
  // Steps 4..11 from cursor (1, 1): the rows a synchronous walk of the sampler gives.
  std::vector<std::vector<std::int64_t>> expect;
  for (Cursor c{1, 1}; expect.size() < 8; c = sampler.advance(c)) expect.push_back(sampler.indices(c));
  for (int prefetch : {0, 2}) {
    std::vector<std::int64_t> epochs;
    LoaderOptions o;
    o.prefetch = prefetch;
    o.wait_for_rows = [&epochs](std::int64_t epoch, const std::vector<std::int64_t>&) {
      epochs.push_back(epoch);
      return 0.25;
    };
    Loader loader(split, sampler, nullptr, o, Cursor{1, 1}, 4, 12);
    for (const auto& rows : expect) {
      auto b = loader.next();
      ASSERT_EQ(b.labels.size(0), 3);
      for (int k = 0; k < 3; ++k) EXPECT_EQ(b.labels[k].item<std::int64_t>(), rows[k]) << "prefetch " << prefetch;
    }
    EXPECT_EQ(loader.stream_wait_seconds(), 2.0);
    EXPECT_EQ(epochs, (std::vector<std::int64_t>{1, 2, 2, 3, 3, 4, 4, 5}));
  }
}

}  // namespace
}  // namespace distill

namespace distill {
namespace {

// Thread sizing: the pools are sized per rank and read back; a node whose ranks would use more
// threads than its cores is reported.
TEST(Threads, SizedPerRankAndCheckedAgainstTheCores) {
  const int before = at::get_num_threads();
  EXPECT_EQ(size_threads(1, 1), 1);
  auto c = check_threads(1);
  EXPECT_EQ(c.intra_op, 1);
  EXPECT_GE(c.cores, 1);
  if (c.blas >= 0) {
    EXPECT_EQ(c.blas, 1);  // the BLAS pool follows
  }
  EXPECT_TRUE(c.ok) << c.summary;
  auto over = check_threads(c.cores + 1);  // one thread per rank, more ranks than cores
  EXPECT_FALSE(over.ok);
  EXPECT_NE(over.summary.find("OVERSUBSCRIBED"), std::string::npos) << over.summary;
  EXPECT_EQ(size_threads(0, c.cores), 1);  // default: usable cores / ranks on the node
  size_threads(before, 1);
}

}  // namespace
}  // namespace distill
