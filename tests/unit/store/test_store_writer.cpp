// The store writer: shard layout by rank, sizing, dtype conversion and non-finite refusal, the
// writer's skip/redo and manifest. Expected values are literals or torch's own conversions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "distill/store/encode.h"
#include "distill/store/reader.h"
#include "distill/store/sizing.h"
#include "distill/store/writer.h"
#include "test_util.h"

using namespace distill;

using test::error_of;

namespace {

StoreMeta logits_meta(const char* dtype, std::int64_t labels, std::int64_t n, std::int64_t shard) {
  StoreMeta m;
  m.teacher_fingerprint = "t";
  m.dataset_hash = "d";
  m.split = "train";
  m.dtype = dtype;
  m.num_labels = labels;
  m.num_examples = n;
  m.shard_size = shard;
  m.teacher_batch_size = 4;
  return m;
}

std::vector<std::int64_t> iota_ids(std::int64_t begin, std::int64_t end, std::int64_t offset) {
  std::vector<std::int64_t> ids;
  for (auto i = begin; i < end; ++i) ids.push_back(offset + i);
  return ids;
}

const ShardArray& array_named(const EncodedShard& s, const std::string& name) {
  for (const auto& a : s.arrays)
    if (a.name == name) return a;
  throw std::runtime_error("no array " + name);
}

}  // namespace

TEST(StoreWriter, RankShardsAreRoundRobin) {
  auto meta = logits_meta("float16", 2, 10, 3);  // [0,3) [3,6) [6,9) [9,10)
  auto r0 = rank_shards(meta, 0, 2), r1 = rank_shards(meta, 1, 2), r2 = rank_shards(meta, 2, 3);
  ASSERT_EQ(r0.size(), 2u);
  EXPECT_EQ(r0[0].begin, 0);
  EXPECT_EQ(r0[1].begin, 6);
  EXPECT_EQ(r0[1].end, 9);
  ASSERT_EQ(r1.size(), 2u);
  EXPECT_EQ(r1[0].begin, 3);
  EXPECT_EQ(r1[1].begin, 9);
  EXPECT_EQ(r1[1].end, 10);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].begin, 6);
  EXPECT_TRUE(rank_shards(meta, 4, 5).empty());
}

TEST(StoreWriter, PlanSizesAndRefuses) {
  StoreOptions o;
  o.dtype = StoreDtype::kFloat32;
  o.shard_size = 4;
  auto meta = plan_store(logits_meta("", 3, 10, 0), o, 0, false);
  EXPECT_EQ(meta.dtype, "float32");
  EXPECT_EQ(meta.shard_size, 4);
  o.max_bytes = 199;  // (3 x 4 + 8) x 10 = 200
  EXPECT_NE(error_of([&] {
              plan_store(logits_meta("", 3, 10, 0), o, 0, false);
            }).find("the store would take about 200 bytes (20 per example x 10), more than store.max_bytes = 199"),
            std::string::npos);
  // Masked LM: 64 uint16-indexed float16 values per token (264 bytes); 50 tokens over 10 examples.
  StoreOptions m;
  auto mlm = logits_meta("", 30000, 10, 0);
  mlm.targets = "mlm_topk";
  mlm = plan_store(mlm, m, 50, false);
  EXPECT_EQ(mlm.topk, 64);
  EXPECT_EQ(mlm.index_dtype, "uint16");
  m.topk = 40000;
  auto too_big = logits_meta("", 30000, 10, 0);
  too_big.targets = "mlm_topk";
  EXPECT_NE(
      error_of([&] { plan_store(too_big, m, 50, false); }).find("store.topk = 40000 exceeds the vocabulary of 30000"),
      std::string::npos);
}

TEST(StoreWriter, Float16BitsAreTorchs) {
  torch::manual_seed(5);
  auto x =
      torch::cat({torch::randn({4000}) * 3000, torch::randn({4000}) * 1e-5,
                  torch::tensor({0.0f, -0.0f, 65504.0f, -65504.0f, 65519.0f, 6.1e-5f, 5.96e-8f, 2.9e-8f, 1.0f / 3})});
  const auto n = x.numel();
  auto meta = logits_meta("float16", n, 1, 1);
  ShardTargets t;
  t.example_ids = {7};
  t.logits.assign(x.data_ptr<float>(), x.data_ptr<float>() + n);
  auto s = encode_shard(meta, {0, 1}, t);
  ASSERT_EQ(s.nonfinite, "");
  const auto& a = array_named(s, "logits");
  EXPECT_EQ(a.type, h5::Type::kFloat16);
  EXPECT_EQ(a.shape, (std::vector<hsize_t>{1, static_cast<hsize_t>(n)}));
  auto want = x.to(torch::kHalf).contiguous();
  EXPECT_EQ(std::memcmp(a.data, want.data_ptr(), 2 * n), 0);
  meta.dtype = "float32";
  auto f = encode_shard(meta, {0, 1}, t);
  EXPECT_EQ(std::memcmp(array_named(f, "logits").data, x.data_ptr(), 4 * n), 0);
}

TEST(StoreWriter, NonFiniteTargetsNameTheirExamples) {
  auto meta = logits_meta("float16", 2, 5, 5);
  ShardTargets t;
  t.example_ids = iota_ids(0, 5, 100);
  t.logits = {0, 1, 2, std::nanf(""), 4, 5, 6, 70000, 8, 9};  // rows 1 (NaN) and 3 (beyond float16)
  auto s = encode_shard(meta, {0, 5}, t);
  EXPECT_EQ(s.nonfinite,
            "non-finite logits (NaN or infinity, or beyond float16's range of +-65504) in 2 examples "
            "of shard shard-000000000-000000004.h5 (rows [0, 5)), first at example ids 101, 103");
  t.logits[3] = 3;
  meta.dtype = "float32";
  EXPECT_EQ(encode_shard(meta, {0, 5}, t).nonfinite, "");
  t.logits.pop_back();
  EXPECT_NE(error_of([&] {
              encode_shard(meta, {0, 5}, t);
            }).find("logits got 9 values, its shape needs 10"),
            std::string::npos);
}

TEST(StoreWriter, TopkTargetsAreNarrowedAndMappedToExamples) {
  auto meta = logits_meta("float32", 70000, 3, 3);
  meta.targets = "mlm_topk";
  meta.topk = 2;
  meta.index_dtype = "uint16";
  ShardTargets t;
  t.example_ids = {20, 21, 22};
  t.tokens = {2, 0, 1};  // rows 0, 1 are example 0's; row 2 example 2's
  t.topk_values = {5, 4, 3, 2, 1, 0};
  t.topk_indices = {65535, 3, 300, 1, 0, 2};
  t.lse = {1, 2, std::numeric_limits<float>::infinity()};
  auto s = encode_shard(meta, {0, 3}, t);
  EXPECT_EQ(s.nonfinite,
            "non-finite lse (NaN or infinity) in 1 masked tokens of shard shard-000000000-000000002.h5 "
            "(rows [0, 3)), first at example ids 22");
  t.lse[2] = 3;
  s = encode_shard(meta, {0, 3}, t);
  ASSERT_EQ(s.nonfinite, "");
  const auto& off = array_named(s, "row_offsets");
  EXPECT_EQ(off.shape, std::vector<hsize_t>{4});
  const auto* o = static_cast<const std::int64_t*>(off.data);
  EXPECT_EQ(std::vector<std::int64_t>(o, o + 4), (std::vector<std::int64_t>{0, 2, 2, 3}));
  const auto& idx = array_named(s, "topk_indices");
  EXPECT_EQ(idx.type, h5::Type::kUInt16);
  EXPECT_EQ(static_cast<const std::uint16_t*>(idx.data)[0], 65535);
  EXPECT_EQ(static_cast<const std::uint16_t*>(idx.data)[2], 300);
  EXPECT_EQ(array_named(s, "topk_values").shape, (std::vector<hsize_t>{3, 2}));
}

TEST(StoreWriter, WritesSkipsAndListsShards) {
  const auto dir = test::temp_dir("writer");
  const auto meta = logits_meta("float32", 2, 5, 2);  // [0,2) [2,4) [4,5)
  std::ofstream(dir + "/shard-000000000-000000001.h5.partial-1") << "partial";
  prepare_store(dir, meta);
  EXPECT_FALSE(std::filesystem::exists(dir + "/shard-000000000-000000001.h5.partial-1"));
  {
    StoreWriter w(dir, meta, 0, 1);
    ASSERT_EQ(w.shards(), 3u);
    for (std::size_t i = 0; i < w.shards(); ++i) {
      EXPECT_FALSE(w.keep_if_committed(i));
      const auto r = w.range(i);
      ShardTargets t;
      t.example_ids = iota_ids(r.begin, r.end, 50);
      for (auto k = r.begin; k < r.end; ++k) t.logits.insert(t.logits.end(), {float(k), -float(k)});
      w.write(w.encode(i, std::move(t)));
    }
    w.wait();
    EXPECT_EQ(w.stats().shards_written, 3);
    EXPECT_EQ(w.stats().rows_written, 5);
    EXPECT_EQ(w.commit_manifest({w.entries()}).shards.size(), 3u);
  }
  StoreReader reader(dir, meta);
  std::vector<float> row(2);
  reader.read_logits(3, row.data());
  EXPECT_EQ(row, (std::vector<float>{3.0f, -3.0f}));
  // A rerun keeps every shard; one whose bytes changed is redone.
  {
    std::fstream f(dir + "/shard-000000002-000000003.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(c ^ 0xff));
  }
  prepare_store(dir, meta);
  StoreWriter again(dir, meta, 0, 1);
  EXPECT_TRUE(again.keep_if_committed(0));
  EXPECT_FALSE(again.keep_if_committed(1));
  EXPECT_TRUE(again.keep_if_committed(2));
  EXPECT_EQ(again.stats().shards_skipped, 2);
  EXPECT_EQ(again.stats().rows_done, 3);
  // Another shard size is refused while the manifest says otherwise.
  auto other = meta;
  other.shard_size = 3;
  EXPECT_NE(error_of([&] { prepare_store(dir, other); }).find("has shard_size 2 and dtype float32"), std::string::npos);
}

// An mlm_topk store read per example: each example's tokens in position order, none for an
// example without masked tokens, and nothing read at open.
TEST(StoreWriter, TopkStoreReadsPerExample) {
  const auto dir = test::temp_dir("writer-topk");
  auto meta = logits_meta("float32", 1000, 5, 2);  // [0,2) [2,4) [4,5)
  meta.targets = "mlm_topk";
  meta.topk = 2;
  meta.index_dtype = "int32";
  meta.temperature = 2;
  const std::vector<std::int64_t> tokens = {2, 0, 1, 3, 1};
  std::vector<std::int64_t> first(tokens.size() + 1, 0);  // example i's first token, over the split
  for (std::size_t i = 0; i < tokens.size(); ++i) first[i + 1] = first[i] + tokens[i];
  prepare_store(dir, meta);
  {
    StoreWriter w(dir, meta, 0, 1);
    for (std::size_t s = 0; s < w.shards(); ++s) {
      const auto r = w.range(s);
      ShardTargets t;
      t.example_ids = iota_ids(r.begin, r.end, 0);
      for (auto i = r.begin; i < r.end; ++i) {
        t.tokens.push_back(tokens[i]);
        for (auto g = first[i]; g < first[i + 1]; ++g) {
          t.topk_values.insert(t.topk_values.end(), {10.0f * g + 1, 10.0f * g});
          t.topk_indices.insert(t.topk_indices.end(), {g, 500 + g});
          t.lse.push_back(g + 0.5f);
        }
      }
      w.write(w.encode(s, std::move(t)));
    }
    w.wait();
    w.commit_manifest({w.entries()});
  }
  StoreReader reader(dir, meta);
  EXPECT_EQ(reader.rows_read(), 0);
  std::vector<float> values = {-1}, lse;
  std::vector<std::int64_t> indices;
  for (std::int64_t i : {3, 1, 0}) EXPECT_EQ(reader.read_topk(i, values, indices, lse), tokens[i]) << i;
  EXPECT_EQ(reader.rows_read(), 3);
  // Appended after what the vectors held: example 3's tokens 3, 4, 5, then example 0's 0, 1.
  EXPECT_EQ(values, (std::vector<float>{-1, 31, 30, 41, 40, 51, 50, 1, 0, 11, 10}));
  EXPECT_EQ(indices, (std::vector<std::int64_t>{3, 503, 4, 504, 5, 505, 0, 500, 1, 501}));
  EXPECT_EQ(lse, (std::vector<float>{3.5f, 4.5f, 5.5f, 0.5f, 1.5f}));
  std::vector<float> row(1000);
  EXPECT_NE(error_of([&] { reader.read_logits(0, row.data()); }).find("has no logits (targets 'mlm_topk')"),
            std::string::npos);
}
