// Verified stores (Note [verified stores]): shard digests, HDF5 metadata checksums, confined
// manifest paths, the coverage inspect reports, and one teacher batch size per store.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "distill/app/commands.h"
#include "distill/store/manifest.h"
#include "distill/store/reader.h"
#include "distill/store/shard.h"
#include "distill/store/verify.h"
#include "distill/util/error.h"
#include "distill/util/hash.h"
#include "test_util.h"

using namespace distill;
using test::error_of;
namespace fs = std::filesystem;

namespace {

StoreMeta logits_meta(std::int64_t n, std::int64_t shard, std::int64_t labels = 3) {
  StoreMeta m;
  m.teacher_fingerprint = "t";
  m.dataset_hash = "d";
  m.split = "train";
  m.dtype = "float32";
  m.num_labels = labels;
  m.num_examples = n;
  m.shard_size = shard;
  return m;
}

// Row i holds i * 10 + label: every value is distinct and none is zero.
std::vector<float> values(const ShardRange& r, std::int64_t labels) {
  std::vector<float> v;
  for (auto i = r.begin; i < r.end; ++i)
    for (std::int64_t l = 0; l < labels; ++l) v.push_back(static_cast<float>(i * 10 + l + 1));
  return v;
}

// A committed store as precompute leaves it: every shard, and a manifest with sizes and digests.
Manifest write_store(const std::string& dir, const StoreMeta& meta) {
  Manifest m;
  m.meta = meta;
  for (auto r : shard_ranges(meta.num_examples, meta.shard_size)) {
    auto v = values(r, meta.num_labels);
    std::vector<std::int64_t> ids;
    for (auto i = r.begin; i < r.end; ++i) ids.push_back(1000 + i);
    auto p = write_shard(dir, meta, r, v.data(), ids, 0);
    m.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(fs::file_size(p)), file_digest(p)});
  }
  write_manifest(dir, m);
  return m;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << b;
}

// Example i's logits as read_logits() gives them.
std::vector<float> logits_of(const StoreReader& r, std::int64_t i) {
  std::vector<float> v(static_cast<std::size_t>(r.num_labels()));
  r.read_logits(i, v.data());
  return v;
}

void expect_has(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
}

}  // namespace

TEST(StoreVerify, ReaderRefusesAShardWhoseDigestDiffers) {
  const auto dir = test::temp_dir("verify-digest");
  const auto meta = logits_meta(10, 4);
  auto m = write_store(dir, meta);
  StoreReader ok(dir, meta);
  EXPECT_EQ(logits_of(ok, 9)[2], 93.0f);
  // Replace the second shard by one with other values but the same size: every HDF5 checksum
  // holds, only the digest tells.
  const auto& e = m.shards[1];
  auto v = values(e.range, 3);
  v[0] = -1;
  std::vector<std::int64_t> ids = {1004, 1005, 1006, 1007};
  write_shard(dir, meta, e.range, v.data(), ids, 0);
  ASSERT_EQ(static_cast<std::int64_t>(fs::file_size(dir + "/" + e.file)), e.bytes);
  const auto found = file_digest(dir + "/" + e.file);
  ASSERT_NE(found, e.digest);
  auto msg = error_of([&] { StoreReader r(dir, meta); });
  expect_has(msg, {"shard-000000004-000000007.h5", "digest " + found, "manifest.json says " + e.digest,
                   "rerun 'distill precompute'", "rows [4, 8)"});
  // store.verify: false reads it as it is.
  StoreReader unchecked(dir, meta, false);
  EXPECT_EQ(logits_of(unchecked, 4)[0], -1.0f);
  // An entry without a digest is not checked (streamed or hand-made manifests).
  m.shards[1].digest = "";
  write_manifest(dir, m);
  EXPECT_NO_THROW(StoreReader(dir, meta));
}

// Every single-bit flip anywhere in a shard, metadata included (chunk index, object headers,
// superblock), is a read error or reads back the same values, never other values such as zeros.
// With the digest check every flip is an error (checked on every 16th byte, for time).
TEST(StoreVerify, BitFlipsInAShardAreErrorsNeverSilentZeros) {
  const auto dir = test::temp_dir("verify-flip");
  const auto meta = logits_meta(300, 300, 2);  // one shard of 2 chunks (256 rows each)
  auto m = write_store(dir, meta);
  const auto& e = m.shards[0];
  const auto path = dir + "/" + e.file;
  const auto original = read_bytes(path);
  const auto want = values(e.range, 2);
  // The metadata lies before, between and after the chunks: find the first chunk's bytes.
  std::string first_chunk(reinterpret_cast<const char*>(want.data()), 64);
  const auto data_at = original.find(first_chunk);
  ASSERT_NE(data_at, std::string::npos);
  std::int64_t errors = 0, same = 0, silent = 0, digest_errors = 0;
  for (std::size_t i = 0; i < original.size(); ++i) {
    auto b = original;
    b[i] = static_cast<char>(b[i] ^ (1 << (i % 8)));
    write_bytes(path, b);
    try {
      auto s = read_shard(path, meta, e.range);
      if (s.logits == want)
        ++same;
      else
        ++silent;
      if (s.logits != want) ADD_FAILURE() << "flipping bit " << i % 8 << " of byte " << i << " changed the values";
    } catch (const StoreError& err) {
      ++errors;
      EXPECT_NE(std::string(err.what()).find(e.file), std::string::npos) << err.what();
    }
    if (i % 16 == 0) digest_errors += !error_of([&] { StoreReader r(dir, meta); }).empty();
  }
  write_bytes(path, original);
  std::printf(
      "[ bit flips ] %zu bytes (metadata before byte %zu): %lld errors, %lld unchanged reads, %lld silent; "
      "%lld of every 16th refused by the digest\n",
      original.size(), data_at, static_cast<long long>(errors), static_cast<long long>(same),
      static_cast<long long>(silent), static_cast<long long>(digest_errors));
  EXPECT_EQ(silent, 0);
  EXPECT_GT(errors, static_cast<std::int64_t>(data_at / 4));  // the metadata is checksummed
  EXPECT_EQ(digest_errors, static_cast<std::int64_t>((original.size() + 15) / 16));
}

TEST(StoreVerify, ShardsUseTheChecksummedFormat) {
  const auto dir = test::temp_dir("verify-format");
  write_store(dir, logits_meta(4, 4));
  // Superblock version 2 or later (byte 8 after the signature) carries a checksum; version 0 does not.
  const auto b = read_bytes(dir + "/shard-000000000-000000003.h5");
  ASSERT_GT(b.size(), 9u);
  EXPECT_EQ(b.substr(0, 8), std::string("\x89HDF\r\n\x1a\n", 8));
  EXPECT_GE(static_cast<int>(b[8]), 2);
}

TEST(StoreVerify, ManifestEntriesAreConfinedToTheStoreDirectory) {
  const auto dir = test::temp_dir("verify-paths");
  const auto meta = logits_meta(8, 4);
  auto m = write_store(dir, meta);
  for (const std::string bad : {"/etc/passwd", "../shard-000000000-000000003.h5", "./shard-000000000-000000003.h5",
                                "sub/shard-000000000-000000003.h5", "shard-000000004-000000007.h5", "shard-0-3.h5",
                                "shard-000000000-000000003.h5.partial-0", ""}) {
    auto copy = m;
    copy.shards[0].file = bad;
    write_manifest(dir, copy);
    auto msg = error_of([&] { read_manifest(dir); });
    expect_has(msg, {"manifest.json", "shard entry \"" + bad + "\"", "shard-000000000-000000003.h5"});
    EXPECT_FALSE(error_of([&] { StoreReader r(dir, meta); }).empty()) << bad;
  }
  write_manifest(dir, m);
  // A symlink out of the store is refused; one inside it is followed.
  const auto outside = test::temp_dir("verify-paths-outside");
  fs::rename(dir + "/shard-000000004-000000007.h5", outside + "/s.h5");
  fs::create_symlink(outside + "/s.h5", dir + "/shard-000000004-000000007.h5");
  auto msg = error_of([&] { StoreReader r(dir, meta); });
  expect_has(msg, {"manifest.json", "shard-000000004-000000007.h5", "outside the store directory"});
  fs::remove(dir + "/shard-000000004-000000007.h5");
  fs::rename(outside + "/s.h5", dir + "/real.h5");
  fs::create_symlink("real.h5", dir + "/shard-000000004-000000007.h5");
  EXPECT_NO_THROW(StoreReader(dir, meta));
}

TEST(StoreVerify, ShardNamesParseOnlyInTheirOwnForm) {
  ShardRange r;
  ASSERT_TRUE(parse_shard_name("shard-000004096-000008191.h5", &r));
  EXPECT_EQ(r.begin, 4096);
  EXPECT_EQ(r.end, 8192);
  for (const char* bad : {"shard-4096-8191.h5", "shard-000004096-000008191.h5x", "shard-000008191-000004096.h5",
                          "shard--00004096-000008191.h5", "x/shard-000004096-000008191.h5", "manifest.json"})
    EXPECT_FALSE(parse_shard_name(bad, &r)) << bad;
}

TEST(StoreVerify, CheckStoreReportsTheCoverageFound) {
  const auto dir = test::temp_dir("verify-health");
  const auto meta = logits_meta(10, 4);
  auto m = write_store(dir, meta);
  auto h = check_store(dir, true);
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.covered, 10);
  EXPECT_EQ(h.digests_checked, 3);
  EXPECT_TRUE(h.gaps.empty());

  // A shard on disk the manifest does not list, and a partial file: reported, not fatal.
  write_bytes(dir + "/shard-000000010-000000013.h5", "x");
  write_bytes(dir + "/shard-000000000-000000003.h5.partial-1", "x");
  h = check_store(dir, false);
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.unlisted, std::vector<std::string>{"shard-000000010-000000013.h5"});
  EXPECT_EQ(h.partial, std::vector<std::string>{"shard-000000000-000000003.h5.partial-1"});

  // The middle shard goes missing: the manifest header still says 10 examples, 6 are covered.
  fs::rename(dir + "/shard-000000004-000000007.h5", dir + "/keep");
  h = check_store(dir, false);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.examples, 10);
  EXPECT_EQ(h.covered, 6);
  ASSERT_EQ(h.gaps.size(), 1u);
  EXPECT_EQ(h.gaps[0].begin, 4);
  EXPECT_EQ(h.gaps[0].end, 8);
  EXPECT_EQ(h.missing, std::vector<std::string>{"shard-000000004-000000007.h5"});
  fs::rename(dir + "/keep", dir + "/shard-000000004-000000007.h5");

  // A replaced shard of the same size: only --verify finds it.
  auto v = values({8, 10}, 3);
  v[0] = 7;
  write_shard(dir, meta, {8, 10}, v.data(), {1008, 1009}, 0);
  EXPECT_TRUE(check_store(dir, false).healthy());
  h = check_store(dir, true);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.covered, 8);
  ASSERT_EQ(h.bad.size(), 1u);
  expect_has(h.bad[0], {"shard-000000008-000000009.h5", "digest", "manifest.json says " + m.shards[2].digest});

  // inspect prints the report and fails on a broken store.
  auto msg = error_of([&] { cmd_inspect(dir, true, true); });
  expect_has(msg, {"is broken", "cover 8 of 10", "rows [8, 10)"});
  write_store(dir, meta);
  EXPECT_EQ(error_of([&] { cmd_inspect(dir, true, true); }), "");

  // Without a manifest (precompute killed before writing it) the shards are judged on their own.
  fs::remove(manifest_path(dir));
  fs::remove(dir + "/shard-000000010-000000013.h5");
  h = check_store(dir, false);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.examples, 10);
  EXPECT_EQ(h.covered, 10);
  ASSERT_EQ(h.problems.size(), 1u);
  EXPECT_NE(h.problems[0].find("no manifest.json"), std::string::npos);
  EXPECT_NE(error_of([&] { cmd_inspect(dir, false, false); }).find("is broken"), std::string::npos);
}

TEST(StoreVerify, OneTeacherBatchSizePerStore) {
  const auto dir = test::temp_dir("verify-batch");
  auto meta = logits_meta(8, 4);
  meta.teacher_batch_size = 8;
  write_store(dir, meta);
  EXPECT_EQ(read_manifest(dir).meta.teacher_batch_size, 8);
  EXPECT_EQ(read_shard_meta(dir + "/shard-000000000-000000003.h5").first.teacher_batch_size, 8);
  // The reader takes the store's batch size; a run expecting another is refused, naming the key.
  auto expect = logits_meta(8, 4);
  EXPECT_NO_THROW(StoreReader(dir, expect));
  expect.teacher_batch_size = 2;
  expect_has(error_of([&] { StoreReader r(dir, expect); }),
             {"teacher.batch_size 8, expected 2", "set teacher.batch_size: 8"});
  // A shard of another batch size among the store's is refused when first read, naming the shard.
  auto other = meta;
  other.teacher_batch_size = 2;
  auto v = values({4, 8}, 3);
  write_shard(dir, other, {4, 8}, v.data(), {1004, 1005, 1006, 1007}, 0);
  StoreReader mixed(dir, logits_meta(8, 4), false);
  EXPECT_EQ(logits_of(mixed, 3)[0], 31.0f);
  auto msg = error_of([&] { logits_of(mixed, 5); });
  expect_has(msg, {"shard-000000004-000000007.h5", "teacher.batch_size 2, expected 8"});
  // Not recorded (older stores): accepted.
  StoreMeta unknown = meta;
  unknown.teacher_batch_size = 0;
  EXPECT_NO_THROW(check_store_meta(unknown, meta, "x"));
  EXPECT_NO_THROW(check_store_meta(meta, unknown, "x"));
}

// Measures what the digest check costs next to reading the store (printed; asserts nothing).
// Run with --gtest_also_run_disabled_tests. DISTILL_BENCH_EXAMPLES and _LABELS size the store.
TEST(StoreVerify, DISABLED_DigestCost) {
  auto env = [](const char* k, std::int64_t d) {
    const char* v = std::getenv(k);
    return v ? std::atoll(v) : d;
  };
  const std::int64_t n = env("DISTILL_BENCH_EXAMPLES", 1 << 20), labels = env("DISTILL_BENCH_LABELS", 4);
  const auto dir = test::temp_dir("verify-cost");
  auto meta = logits_meta(n, 4096, labels);
  meta.dtype = "float16";
  Manifest m;
  m.meta = meta;
  std::int64_t bytes = 0;
  for (auto r : shard_ranges(n, meta.shard_size)) {
    std::vector<std::uint16_t> v(static_cast<std::size_t>((r.end - r.begin) * labels), 0x3c00);  // 1.0
    std::vector<std::int64_t> ids(static_cast<std::size_t>(r.end - r.begin), 0);
    auto p = write_shard(dir, meta, r, v.data(), ids, 0);
    m.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(fs::file_size(p)), file_digest(p)});
    bytes += m.shards.back().bytes;
  }
  write_manifest(dir, m);
  using clock = std::chrono::steady_clock;
  auto time = [](auto f) {
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
    }
    return best;
  };
  const double digest_s = time([&] {
    for (const auto& e : m.shards) verify_shard_digest(dir, e);
  });
  const double read_s = time([&] { StoreReader r(dir, meta, false); });
  const double both_s = time([&] { StoreReader r(dir, meta, true); });
  std::printf(
      "[ digest cost ] %lld examples x %lld float16 labels, %zu shards, %.1f MB (page cache warm): digest "
      "%.3f s (%.0f MB/s), open without verify %.3f s, with verify %.3f s (+%.0f%%)\n",
      static_cast<long long>(n), static_cast<long long>(labels), m.shards.size(), bytes / 1e6, digest_s,
      bytes / 1e6 / digest_s, read_s, both_s, 100 * (both_s - read_s) / read_s);
  fs::remove_all(dir);
}
