// TensorBoard events: CRC32C against published check values, TFRecord framing by hand, tags of
// metrics lines, and tb/ rewritten from metrics.jsonl. tests/e2e/tb_events.py reads the files of
// real runs with an independent reader.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "distill/io/tensorboard.h"
#include "distill/train/metrics_log.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "test_util.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

std::uint64_t le(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// The records of an event file: (length, data) after checking both CRCs.
std::vector<std::string> records(const std::string& file) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < file.size();) {
    const auto n = le(file, at, 8);
    EXPECT_EQ(le(file, at + 8, 4), masked_crc32c(file.substr(at, 8)));
    out.push_back(file.substr(at + 12, n));
    EXPECT_EQ(le(file, at + 12 + n, 4), masked_crc32c(out.back()));
    at += 16 + n;
  }
  return out;
}

}  // namespace

TEST(Tensorboard, Crc32cCheckValues) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);          // the CRC-32C check value
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720, B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  const std::uint32_t c = crc32c("123456789");
  EXPECT_EQ(masked_crc32c("123456789"), static_cast<std::uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
}

TEST(Tensorboard, RecordFraming) {
  const std::string data = "abc\0def";
  const auto r = tf_record(data);
  ASSERT_EQ(r.size(), 8 + 4 + data.size() + 4);
  EXPECT_EQ(le(r, 0, 8), data.size());
  EXPECT_EQ(r.substr(12, data.size()), data);
  const auto rs = records(r);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0], data);
}

TEST(Tensorboard, FileVersionEventBytes) {
  // Event{wall_time = 1.5 (field 1, fixed64), file_version = "brain.Event:2" (field 3)}.
  const std::string want = std::string("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f", 9) + "\x1a\x0d" + "brain.Event:2";
  EXPECT_EQ(file_version_event(1.5), want);
}

TEST(Tensorboard, ScalarEventBytes) {
  // Event{step = 7 (field 2, varint), summary (field 5) {value (field 1) {tag "a" (1), simple_value 2.0f (2, fixed32)}}}.
  const std::string value = std::string("\x0a\x01", 2) + "a" + std::string("\x15\x00\x00\x00\x40", 5);
  const std::string summary = std::string("\x0a", 1) + static_cast<char>(value.size()) + value;
  const std::string want = std::string("\x10\x07\x2a", 3) + static_cast<char>(summary.size()) + summary;
  EXPECT_EQ(scalars_event(0.0, 7, {{"a", 2.0}}), want);
}

TEST(Tensorboard, TagsOfMetricsLines) {
  auto line = nlohmann::json::parse(
      R"({"step":5,"epoch":1,"wall_time":2.0,"loss":0.5,"lr":0.01,"alpha":0.3,"dev_accuracy":0.75,"eval_split":"dev",
          "bad":null})");
  line["nan"] = std::nan("");
  std::map<std::string, double> got;
  for (const auto& [tag, v] : tensorboard_scalars(line)) got[tag] = v;
  const std::map<std::string, double> want = {
      {"train/loss", 0.5}, {"train/lr", 0.01}, {"schedule/alpha", 0.3}, {"dev/accuracy", 0.75}};
  EXPECT_EQ(got, want);
}

TEST(Tensorboard, RewrittenFromMetrics) {
  const auto dir = test::temp_dir("tensorboard");
  const auto tb = tensorboard_dir(dir);
  fs::create_directories(tb);
  write_file_atomic(tb + "/events.out.tfevents.1.old.1.distill", "stale");
  write_file_atomic(tb + "/events.out.tfevents.1.other", "kept: not written by distill");
  write_file_atomic(metrics_path(dir), R"({"step":1,"wall_time":10.0,"loss":2.0}
{"step":2,"wall_time":11.0,"eval_split":"dev","dev_accuracy":0.5}
)");
  auto w = rewrite_tensorboard(dir);
  w->add(12.0, 3, {{"train/loss", 1.0}});
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tb)) names.push_back(e.path().filename().string());
  ASSERT_EQ(names.size(), 2u);
  EXPECT_TRUE(path_exists(tb + "/events.out.tfevents.1.other"));
  const auto rs = records(read_file(w->path()));
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[1], scalars_event(10.0, 1, {{"train/loss", 2.0}}));
  EXPECT_EQ(rs[2], scalars_event(11.0, 2, {{"dev/accuracy", 0.5}}));
  EXPECT_EQ(rs[3], scalars_event(12.0, 3, {{"train/loss", 1.0}}));
  write_file_atomic(metrics_path(dir), "{\"step\":1}\n[1]\n");
  try {
    rewrite_tensorboard(dir);
    FAIL() << "a line that is not an object was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl line 2"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
