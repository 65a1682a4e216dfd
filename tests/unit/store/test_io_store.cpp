#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "distill/data/synthetic.h"
#include "distill/io/h5.h"
#include "distill/io/safetensors.h"
#include "distill/store/manifest.h"
#include "distill/store/reader.h"
#include "distill/store/shard.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "test_util.h"

using namespace distill;

using test::error_of;

namespace {
StoreMeta make_meta(const char* teacher, const char* data, const char* dtype, std::int64_t labels, std::int64_t n,
                    std::int64_t shard) {
  StoreMeta m;
  m.teacher_fingerprint = teacher;
  m.dataset_hash = data;
  m.split = "train";
  m.dtype = dtype;
  m.num_labels = labels;
  m.num_examples = n;
  m.shard_size = shard;
  return m;
}
// Row i label l holds 1000 (i + 1) + l + 0.25: distinct, exact in float32 and unlikely to occur
// in HDF5 metadata.
float value_at(std::int64_t i, std::int64_t l) { return 1000.0f * static_cast<float>(i + 1) + l + 0.25f; }

std::vector<float> shard_values(const ShardRange& r, std::int64_t labels) {
  std::vector<float> v;
  for (auto i = r.begin; i < r.end; ++i)
    for (std::int64_t l = 0; l < labels; ++l) v.push_back(value_at(i, l));
  return v;
}

// A float32 logits store of value_at() with a manifest (sizes, no digests).
void write_logits_store(const std::string& dir, const StoreMeta& meta) {
  Manifest m;
  m.meta = meta;
  for (auto r : shard_ranges(meta.num_examples, meta.shard_size)) {
    auto v = shard_values(r, meta.num_labels);
    std::vector<std::int64_t> ids;
    for (auto i = r.begin; i < r.end; ++i) ids.push_back(i);
    auto p = write_shard(dir, meta, r, v.data(), ids, 0);
    m.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(std::filesystem::file_size(p)), ""});
  }
  write_manifest(dir, m);
}

std::int64_t open_fds() {
  std::int64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd"); it != std::filesystem::directory_iterator();
       ++it)
    ++n;
  return n;
}

}  // namespace

TEST(SafeTensors, HeaderLayoutAndErrors) {
  SafeTensors st;
  st.tensors["b"] = {"F32", {2}, std::string("\0\0\x80\x3f\0\0\0\x40", 8)};  // 1.0f, 2.0f
  st.tensors["a"] = {"I64", {1}, std::string(8, '\0')};
  auto bytes = encode_safetensors(st);
  std::uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(hlen % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + hlen + 16);
  // Sorted by name: a's data first.
  EXPECT_NE(bytes.find("\"a\":{\"data_offsets\":[0,8]"), std::string::npos) << bytes.substr(8, hlen);
  auto back = decode_safetensors(bytes, "x");
  EXPECT_EQ(back.tensors.at("b").bytes, st.tensors["b"].bytes);
  EXPECT_NE(error_of([&] {
              decode_safetensors(bytes.substr(0, bytes.size() - 3), "cut.safetensors");
            }).find("cut.safetensors"),
            std::string::npos);
  EXPECT_NE(error_of([&] { decode_safetensors("abc", "tiny"); }).find("too short"), std::string::npos);
}

TEST(Store, ShardRoundTripFloat16AndFloat32) {
  const auto dir = test::temp_dir("store");
  StoreMeta meta = make_meta("t1", "d1", "float16", 3, 5, 5);
  auto logits = torch::randn({5, 3}) * 4;
  std::vector<std::int64_t> ids = {10, 11, 12, 13, 14};
  for (const char* dtype : {"float16", "float32"}) {
    meta.dtype = dtype;
    auto t = meta.dtype == "float16" ? logits.to(torch::kHalf).contiguous() : logits.contiguous();
    auto path = write_shard(dir, meta, {0, 5}, t.data_ptr(), ids, 0);
    EXPECT_EQ(std::filesystem::path(path).filename(), "shard-000000000-000000004.h5");
    EXPECT_FALSE(std::filesystem::exists(path + ".partial-0"));
    auto s = read_shard(path, meta, {0, 5});
    auto back = torch::from_blob(s.logits.data(), {5, 3}, torch::kFloat32);
    // float16 values round to nearest like torch's conversion; float32 is exact.
    EXPECT_TRUE(torch::equal(back, t.to(torch::kFloat32))) << dtype;
  }
  auto other = meta;
  other.teacher_fingerprint = "t2";
  auto msg = error_of([&] { read_shard(dir + "/shard-000000000-000000004.h5", other, {0, 5}); });
  EXPECT_NE(msg.find("teacher t1"), std::string::npos) << msg;
  other = meta;
  other.num_labels = 4;
  msg = error_of([&] { read_shard(dir + "/shard-000000000-000000004.h5", other, {0, 5}); });
  EXPECT_NE(msg.find("holds 3 labels, the student expects 4"), std::string::npos) << msg;
}

TEST(Store, ReaderChecksCoverageAndSizes) {
  const auto dir = test::temp_dir("reader");
  StoreMeta meta = make_meta("t", "d", "float32", 2, 7, 4);
  Manifest m;
  m.meta = meta;
  for (auto r : shard_ranges(7, 4)) {
    std::vector<float> v;
    std::vector<std::int64_t> ids;
    for (auto i = r.begin; i < r.end; ++i) {
      v.push_back(static_cast<float>(i));
      v.push_back(-static_cast<float>(i));
      ids.push_back(i);
    }
    auto p = write_shard(dir, meta, r, v.data(), ids, 0);
    m.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(std::filesystem::file_size(p)), ""});
  }
  write_manifest(dir, m);
  StoreReader reader(dir, meta);
  std::vector<float> row(2);
  reader.read_logits(5, row.data());
  EXPECT_EQ(row, (std::vector<float>{5.0f, -5.0f}));
  // Truncate the second shard: the error names it.
  std::filesystem::resize_file(dir + "/shard-000000004-000000006.h5", 100);
  auto msg = error_of([&] { StoreReader r(dir, meta); });
  EXPECT_NE(msg.find("shard-000000004-000000006.h5 is 100 bytes"), std::string::npos) << msg;
  std::filesystem::remove(dir + "/shard-000000004-000000006.h5");
  msg = error_of([&] { StoreReader r(dir, meta); });
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  auto other = meta;
  other.dataset_hash = "elsewhere";
  msg = error_of([&] { StoreReader r(dir, other); });
  EXPECT_NE(msg.find("data set d"), std::string::npos) << msg;
}

// Opening reads no targets; each read_logits reads one row from its shard.
TEST(Store, ReaderReadsLogitsLazilyPerExample) {
  const auto dir = test::temp_dir("reader-lazy");
  StoreMeta meta = make_meta("t", "d", "float32", 3, 10, 4);
  write_logits_store(dir, meta);
  StoreReader reader(dir, meta);
  EXPECT_EQ(reader.rows_read(), 0);
  EXPECT_EQ(reader.shard_count(), 3);
  std::vector<float> row(3);
  for (std::int64_t i : {9, 0, 5}) {
    reader.read_logits(i, row.data());
    EXPECT_EQ(row, (std::vector<float>{value_at(i, 0), value_at(i, 1), value_at(i, 2)})) << i;
  }
  EXPECT_EQ(reader.rows_read(), 3);
  auto msg = error_of([&] { reader.read_logits(10, row.data()); });
  EXPECT_NE(msg.find("row 10 out of range [0, 10)"), std::string::npos) << msg;
  std::vector<float> values, lse;
  std::vector<std::int64_t> indices;
  msg = error_of([&] { reader.read_topk(1, values, indices, lse); });
  EXPECT_NE(msg.find("has no top-k targets"), std::string::npos) << msg;
  EXPECT_EQ(reader.rows_read(), 3);
}

// More shards than StoreReader::kMaxOpenShards: every row reads back and at most that many shard
// files are open at once.
TEST(Store, ReaderKeepsABoundedNumberOfShardsOpen) {
  const auto dir = test::temp_dir("reader-lru");
  const std::int64_t n = static_cast<std::int64_t>(StoreReader::kMaxOpenShards) + 6;
  StoreMeta meta = make_meta("t", "d", "float32", 2, n, 1);
  write_logits_store(dir, meta);
  const auto before = open_fds();
  StoreReader reader(dir, meta, false);
  std::vector<float> row(2);
  for (int pass = 0; pass < 2; ++pass)
    for (std::int64_t i = 0; i < n; ++i) {
      reader.read_logits(pass ? n - 1 - i : i, row.data());
      EXPECT_EQ(row[1], value_at(pass ? n - 1 - i : i, 1));
      EXPECT_LE(open_fds() - before, static_cast<std::int64_t>(StoreReader::kMaxOpenShards));
    }
  EXPECT_EQ(reader.rows_read(), 2 * n);
  // Concurrent reads from several threads each get their own rows.
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<float> r(2);
      for (std::int64_t i = t; i < n; i += 4) {
        reader.read_logits(i, r.data());
        wrong += r[0] != value_at(i, 0) || r[1] != value_at(i, 1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(reader.rows_read(), 2 * n + n);
}

// A damaged chunk (Fletcher32 mismatch) is an error naming the store, shard and example when the
// row is read; other shards still read.
TEST(Store, ReaderNamesTheShardOfACorruptChunk) {
  const auto dir = test::temp_dir("reader-corrupt");
  StoreMeta meta = make_meta("t", "d", "float32", 4, 12, 4);  // 3 shards of one chunk each
  write_logits_store(dir, meta);
  const std::string file = "shard-000000004-000000007.h5", path = dir + "/" + file;
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto want = shard_values({4, 8}, 4);
  const auto at = bytes.find(std::string(reinterpret_cast<const char*>(want.data()), want.size() * sizeof(float)));
  ASSERT_NE(at, std::string::npos);
  bytes[at + want.size() * sizeof(float) / 2] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  StoreReader reader(dir, meta, false);  // no digest check: the chunk checksum has to catch it
  EXPECT_EQ(reader.rows_read(), 0);
  std::vector<float> row(4);
  auto msg = error_of([&] { reader.read_logits(5, row.data()); });
  for (const std::string& part : std::vector<std::string>{"store " + dir, file, "cannot read example 5", "of /logits",
                                                          "rerun 'distill precompute'"})
    EXPECT_NE(msg.find(part), std::string::npos) << "missing '" << part << "' in: " << msg;
  EXPECT_THROW(reader.read_logits(5, row.data()), StoreError);
  reader.read_logits(9, row.data());
  EXPECT_EQ(row[3], value_at(9, 3));
  EXPECT_EQ(reader.rows_read(), 1);
}

// Streaming: a shard is readable once wait_for_shards has reached it; nothing is read before.
TEST(Store, StreamingReaderReadsCommittedShardsOnly) {
  const auto dir = test::temp_dir("reader-stream");
  StoreMeta meta = make_meta("t", "d", "float32", 2, 6, 4);  // [0, 4) [4, 6)
  StoreReader reader(dir, meta, StoreReader::Streaming{});
  EXPECT_EQ(reader.shards_loaded(), 0);
  EXPECT_EQ(reader.shard_count(), 2);
  auto v = shard_values({0, 4}, 2);
  write_shard(dir, meta, {0, 4}, v.data(), {0, 1, 2, 3}, 0);
  reader.wait_for_shards(1, 5.0);
  EXPECT_EQ(reader.shards_loaded(), 1);
  EXPECT_EQ(reader.rows_read(), 0);
  std::vector<float> row(2);
  reader.read_logits(3, row.data());
  EXPECT_EQ(row[1], value_at(3, 1));
  auto msg = error_of([&] { reader.read_logits(4, row.data()); });
  EXPECT_NE(msg.find("row 4 is in a shard not loaded yet (streaming)"), std::string::npos) << msg;
  msg = error_of([&] { reader.wait_for_shards(2, 0.05); });
  EXPECT_NE(msg.find("while waiting for shard-000000004-000000005.h5"), std::string::npos) << msg;
  v = shard_values({4, 6}, 2);
  write_shard(dir, meta, {4, 6}, v.data(), {4, 5}, 0);
  reader.wait_for_shards(2, 5.0);
  reader.read_logits(4, row.data());
  EXPECT_EQ(row[0], value_at(4, 0));
  EXPECT_EQ(reader.rows_read(), 2);
}

TEST(Dataset, SyntheticRoundTripAndHash) {
  SyntheticOptions o;
  o.train = 300;
  o.dev = 50;
  o.test = 50;
  o.num_labels = 3;
  auto d = make_synthetic(o);
  // Labels follow the marker counts except for the noise share.
  const auto& tr = d.split("train");
  std::int64_t agree = 0;
  for (std::int64_t i = 0; i < tr.n; ++i) {
    std::vector<int> count(3, 0);
    for (std::int64_t t = 0; t < tr.seq; ++t) {
      auto id = tr.input_ids[i * tr.seq + t];
      if (id >= 5 && id < 5 + 3 * o.markers_per_class) ++count[(id - 5) / o.markers_per_class];
    }
    int y = 0;
    for (int c = 1; c < 3; ++c)
      if (count[c] > count[y]) y = c;
    agree += y == tr.labels[i];
  }
  EXPECT_GT(agree, tr.n * 0.9);
  EXPECT_LT(agree, tr.n);
  const auto dir = test::temp_dir("dataset");
  write_dataset(dir + "/d.h5", d);
  auto back = read_dataset(dir + "/d.h5");
  EXPECT_EQ(back.split("test").all().input_ids, d.split("test").input_ids);
  EXPECT_EQ(back.content_hash, dataset_content_hash(d));
  EXPECT_EQ(make_synthetic(o).split("dev").labels, d.split("dev").labels);
  auto msg = error_of([&] { read_dataset(dir + "/nope.h5"); });
  EXPECT_NE(msg.find("nope.h5 does not exist"), std::string::npos) << msg;
  msg = error_of([&] { back.split("validation"); });
  EXPECT_NE(msg.find("no split 'validation'"), std::string::npos) << msg;
}

// Every float16 bit pattern (normals, subnormals, zeros, infinities, NaNs) reads back as the float
// torch's conversion gives, through the fast raw-bits path of h5::File::read and read_rows.
TEST(Store, Float16ReadsMatchTorchForEveryBitPattern) {
  const auto dir = test::temp_dir("f16");
  const std::int64_t n = 65536 / 8;
  StoreMeta meta = make_meta("t1", "d1", "float16", 8, n, n);
  auto bits = torch::arange(0, 65536, torch::kInt32).to(torch::kInt16).view({n, 8}).contiguous();
  std::vector<std::int64_t> ids(n);
  for (std::int64_t i = 0; i < n; ++i) ids[i] = i;
  auto path = write_shard(dir, meta, {0, n}, bits.data_ptr(), ids, 0);
  auto s = read_shard(path, meta, {0, n});
  auto got = torch::from_blob(s.logits.data(), {n, 8}, torch::kFloat32);
  auto want = bits.view(torch::kHalf).to(torch::kFloat32);
  auto nan = want.isnan();
  EXPECT_TRUE(torch::equal(got.isnan(), nan));
  EXPECT_TRUE(torch::equal(got.masked_fill(nan, 0), want.masked_fill(nan, 0)));
  EXPECT_TRUE(torch::equal(got.signbit(), want.signbit()));  // -0 stays -0
  auto f = h5::File::open(path);
  std::vector<float> rows(3 * 8);
  f.read_rows("/logits", h5::Type::kFloat32, 100, 103, rows.data());
  EXPECT_TRUE(torch::equal(torch::from_blob(rows.data(), {3, 8}).masked_fill(nan.narrow(0, 100, 3), 0),
                           want.narrow(0, 100, 3).masked_fill(nan.narrow(0, 100, 3), 0)));
}

// Stores made before Q/K/V could be stored keep their layout string: the key appears only when
// qkv_layers is set, and a layout without it reads as none.
TEST(Store, LayoutNamesQkvLayersOnlyWhenStored) {
  StoreMeta m;
  m.hidden_layers = {0, 2};
  m.attention_layers = {2};
  m.teacher_layers = 2;
  m.hidden_size = 32;
  m.heads = 2;
  m.seq = 16;
  const auto old = layout_json(m);
  EXPECT_EQ(old.find("qkv_layers"), std::string::npos) << old;
  StoreMeta back;
  parse_layout_json(back, old, "old");
  EXPECT_TRUE(back.qkv_layers.empty());
  EXPECT_EQ(layout_json(back), old);
  m.attention_layers.clear();
  m.qkv_layers = {1, 2};
  EXPECT_TRUE(m.has_layers());
  parse_layout_json(back, layout_json(m), "new");
  EXPECT_EQ(back.qkv_layers, (std::vector<long>{1, 2}));
  EXPECT_EQ(layout_json(back), layout_json(m));
}

// The content hash of a classification data set is pinned: stores and checkpoints record it, so a
// change to the hash (e.g. from new optional arrays such as regression scores) would orphan them.
// The value is the hash of the e2e fixture's data set as distill wrote it before scores existed.
TEST(Dataset, ClassificationContentHashIsPinned) {
  SyntheticOptions o;
  o.train = 600;
  o.dev = 100;
  o.test = 100;
  o.vocab_size = 200;
  o.seq = 16;
  EXPECT_EQ(dataset_content_hash(make_synthetic(o)), "b31149f1d632ad73");
}
