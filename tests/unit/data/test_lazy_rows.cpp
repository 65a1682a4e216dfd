// Note [lazy rows]: data sets are written block by block and read back lazily; reads are counted,
// corrupt chunks are named, and the streamed content hash matches the in-memory one.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "distill/data/dataset.h"
#include "distill/data/dataset_writer.h"
#include "distill/data/split_file.h"
#include "distill/data/synthetic.h"
#include "test_util.h"

using namespace distill;

namespace {

SyntheticOptions five_blocks() {
  SyntheticOptions o;
  o.train = 5000;  // 5 blocks of 1024 rows, the last one short
  o.dev = 300;
  o.test = 10;
  o.seq = 16;
  o.vocab_size = 400;
  return o;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(LazyRows, RowsAreReadOnlyWhenAskedForABlockAtATime) {
  const auto o = five_blocks();
  const auto mem = make_synthetic(o);
  const auto path = test::temp_dir("lazy") + "/d.h5";
  EXPECT_EQ(write_synthetic(path, o), dataset_content_hash(mem));
  const auto d = read_dataset(path, 0);  // no whole-file check: nothing read yet
  const auto& tr = d.split("train");
  ASSERT_TRUE(tr.file);
  EXPECT_EQ(tr.n, 5000);
  EXPECT_TRUE(tr.input_ids.empty());
  EXPECT_EQ(tr.file->rows_read(), 0);
  EXPECT_EQ(tr.block_rows(), kDatasetChunkRows);
  const std::vector<std::int64_t> rows = {2050, 1030, 2047, 1030};
  const auto got = tr.select(rows);
  EXPECT_EQ(tr.file->rows_read(), 2 * kDatasetChunkRows);  // blocks 1 and 2, once each
  const auto want = mem.split("train").select(rows);
  EXPECT_EQ(got.n, 4);
  EXPECT_EQ(got.input_ids, want.input_ids);
  EXPECT_EQ(got.attention_mask, want.attention_mask);
  EXPECT_EQ(got.labels, want.labels);
  EXPECT_EQ(got.example_id, want.example_id);
  tr.select({4999, 4500});  // the short last block
  EXPECT_EQ(tr.file->rows_read(), 2 * kDatasetChunkRows + (5000 - 4 * kDatasetChunkRows));
  // The cache keeps recent blocks: a reread costs nothing.
  tr.select({1031});
  EXPECT_EQ(tr.file->rows_read(), 2 * kDatasetChunkRows + (5000 - 4 * kDatasetChunkRows));
  EXPECT_EQ(d.split("dev").file->rows_read(), 0);
  // The maxima prepare recorded stand in for a scan.
  std::int64_t max_id = 0;
  for (auto v : mem.split("train").input_ids) max_id = std::max<std::int64_t>(max_id, v);
  EXPECT_EQ(tr.max_input_id, max_id);
  EXPECT_EQ(tr.max_token_type, 0);
  check_fits_model(d, "train", 400, 2, 16, "the student");
  EXPECT_EQ(tr.file->rows_read(), 2 * kDatasetChunkRows + (5000 - 4 * kDatasetChunkRows));
  const auto msg = test::error_of([&] { check_fits_model(d, "train", max_id, 2, 16, "the student"); });
  EXPECT_TRUE(has(msg, "has token id " + std::to_string(max_id)) && has(msg, "vocabulary of")) << msg;
  // The whole-file check reads every block and agrees with the stored hash.
  check_dataset_content(d);
  EXPECT_EQ(read_dataset(path).content_hash, d.content_hash);
}

TEST(LazyRows, ACorruptChunkNamesFileSplitAndRows) {
  auto d = make_synthetic(five_blocks());
  auto& tr = d.splits.at("train");
  // A row no other row matches, to find its bytes in the file: block 1 (rows 1024..2047).
  for (std::int64_t t = 0; t < tr.seq; ++t) tr.input_ids[1500 * tr.seq + t] = static_cast<std::int32_t>(300 + t);
  for (std::int64_t t = 0; t < tr.seq; ++t) tr.attention_mask[1500 * tr.seq + t] = 1;
  const auto path = test::temp_dir("corrupt") + "/d.h5";
  write_dataset(path, d);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string pattern(tr.seq * 4, '\0');
  std::memcpy(pattern.data(), &tr.input_ids[1500 * tr.seq], pattern.size());
  const auto at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  // Opened without the whole-file check, the damage shows when block 1 is read, on every read.
  const auto lazy = read_dataset(path, 0);
  lazy.split("train").select({3});  // block 0 is fine
  for (int i = 0; i < 2; ++i) {
    const auto msg = test::error_of([&] { lazy.split("train").select({1100}); });
    EXPECT_TRUE(has(msg, path) && has(msg, "split train rows [1024, 2048)") && has(msg, "input_ids") &&
                has(msg, "corrupt"))
        << msg;
  }
  // The whole-file check (small files, inspect) finds it at open.
  const auto msg = test::error_of([&] { read_dataset(path); });
  EXPECT_TRUE(has(msg, path) && has(msg, "rows [1024, 2048)")) << msg;
}

TEST(LazyRows, AFailedWriteLeavesNoFile) {
  auto d = make_synthetic(five_blocks());
  const auto dir = test::temp_dir("writer-fails");
  d.splits.at("dev").example_id[7] = d.splits.at("train").example_id[3];  // a duplicate id, found at finish
  const auto msg = test::error_of([&] { write_dataset(dir + "/d.h5", d); });
  EXPECT_TRUE(has(msg, "example_id 3 appears twice") && has(msg, "dev") && has(msg, "train")) << msg;
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  {
    DatasetWriter w(dir + "/e.h5", d);
    w.append("train", d.split("train").select({0, 1}));
    auto bad = d.split("train").select({2});
    bad.labels[0] = 9;
    const auto m = test::error_of([&] { w.append("train", bad); });
    EXPECT_TRUE(has(m, "split train example 2 has label 9")) << m;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}
