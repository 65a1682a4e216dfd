#include <algorithm>
// Text tables and `prepare`: CSV quoting, TSV, JSON lines, bad rows named by file and line,
// deterministic splits, labels and example ids.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "distill/data/dataset.h"
#include "distill/data/prepare.h"
#include "test_util.h"

namespace distill {
namespace {

std::string vocab_path() {
  const char* v = std::getenv("DISTILL_VOCAB");
  return v ? v : "datasets/vocab/bert-base-uncased/vocab.txt";
}

std::string write(const std::string& dir, const std::string& name, const std::string& body) {
  const auto p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << body;
  return p;
}

std::vector<TableRow> rows_of(const std::string& path, TableOptions o) {
  std::vector<TableRow> rows;
  read_table(path, o, [&](TableRow& r) { rows.push_back(r); });
  return rows;
}

TEST(Table, CsvQuotingBomCrlfAndMultilineFields) {
  const auto dir = test::temp_dir("csv");
  const auto p = write(dir, "a.csv",
                       "\xEF\xBB\xBFlabel,text\r\n"
                       "1,plain\r\n"
                       "\"-1\",\"with, comma and \"\"quotes\"\"\"\r\n"
                       "0,\"two\nlines\"\n"
                       "2,\n");
  auto rows = rows_of(p, {TableFormat::kCsv, {}});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].fields.at("label"), "1");
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].fields.at("label"), "-1");
  EXPECT_EQ(rows[1].fields.at("text"), "with, comma and \"quotes\"");
  EXPECT_EQ(rows[2].fields.at("text"), "two\nlines");
  EXPECT_EQ(rows[2].line, 4);
  EXPECT_EQ(rows[3].line, 6);
  EXPECT_EQ(rows[3].index, 3);
  EXPECT_EQ(rows[3].fields.at("text"), "");
}

TEST(Table, CsvBrokenQuotingAndFieldCountsAreRowErrors) {
  const auto dir = test::temp_dir("csvbad");
  const auto p =
      write(dir, "b.csv", "label,text\n1,ok\n1,\"closed\"junk\n1,mid\"quote\n1\n1,ok again\n1,\"never closed\n");
  auto rows = rows_of(p, {TableFormat::kCsv, {}});
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_TRUE(rows[0].error.empty());
  EXPECT_NE(rows[1].error.find("after the closing quote of field 2"), std::string::npos) << rows[1].error;
  EXPECT_NE(rows[2].error.find("stray quote"), std::string::npos) << rows[2].error;
  EXPECT_NE(rows[3].error.find("has 1 fields, expected 2 (columns label, text)"), std::string::npos) << rows[3].error;
  EXPECT_TRUE(rows[4].error.empty());
  EXPECT_EQ(rows[4].line, 6);
  EXPECT_NE(rows[5].error.find("not closed before the end of the file"), std::string::npos) << rows[5].error;
  EXPECT_EQ(rows[5].line, 7);
}

TEST(Table, HeaderlessTsvAndJsonLines) {
  const auto dir = test::temp_dir("tsv");
  auto t = rows_of(write(dir, "a.tsv", "pos\t\"quoted\" stays\nneg\tb\n"), {TableFormat::kTsv, {"label", "text"}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].fields.at("text"), "\"quoted\" stays");
  EXPECT_EQ(t[1].line, 2);
  auto j = rows_of(
      write(dir, "a.jsonl", "{\"text\": \"x\", \"label\": 3}\n\n[1]\n{bad\n{\"text\": \"y\", \"label\": \"a\"}\n"),
      {TableFormat::kJsonl, {}});
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0].fields.at("label"), "3");
  EXPECT_NE(j[1].error.find("expected a JSON object"), std::string::npos);
  EXPECT_EQ(j[1].line, 3);
  EXPECT_NE(j[2].error.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(j[3].fields.at("label"), "a");
  EXPECT_EQ(table_format_of("x.jsonl"), TableFormat::kJsonl);
  EXPECT_NE(test::error_of([] { table_format_of("x.parquet"); }).find("--format"), std::string::npos);
}

PrepareOptions base(const std::string& input) {
  PrepareOptions o;
  o.input = input;
  o.vocab = vocab_path();
  o.max_length = 16;
  o.labels = {"neg", "pos"};
  o.dev_fraction = 0.25;
  o.test_fraction = 0.25;
  return o;
}

TEST(Prepare, TokenizesSplitsAndLabels) {
  const auto dir = test::temp_dir("prep");
  std::string body = "text,label\n";
  for (int i = 0; i < 40; ++i)
    body += std::string(i % 2 ? "a fine film" : "\"Hello, world!\"") + "," + (i % 2 ? "pos" : "neg") + "\n";
  auto o = base(write(dir, "d.csv", body));
  PrepareReport rep;
  auto d = prepare_text(o, &rep);
  EXPECT_EQ(rep.rows, 40);
  EXPECT_EQ(rep.train, 20);
  EXPECT_EQ(rep.dev, 10);
  EXPECT_EQ(rep.test, 10);
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(d.vocab_size, 30522);
  const auto& tr = d.split("train");
  ASSERT_EQ(tr.seq, 16);
  // Every example id appears in exactly one split; ids are record numbers, labels follow the rows.
  std::vector<int> seen(40, 0);
  for (const auto& [name, s] : d.splits)
    for (std::int64_t i = 0; i < s.n; ++i) {
      const auto id = s.example_id[i];
      ++seen[id];
      EXPECT_EQ(s.labels[i], id % 2) << name << " row " << i;
      // "Hello, world!" -> [CLS] hello , world ! [SEP] (ids from the golden fixture).
      if (id % 2 == 0) {
        std::vector<std::int32_t> head(s.input_ids.begin() + i * s.seq, s.input_ids.begin() + i * s.seq + 7);
        EXPECT_EQ(head, (std::vector<std::int32_t>{101, 7592, 1010, 2088, 999, 102, 0}));
      }
    }
  for (int k = 0; k < 40; ++k) EXPECT_EQ(seen[k], 1) << "example " << k;
  // Same seed, same split; another seed, another split.
  auto again = prepare_text(o);
  EXPECT_EQ(again.split("dev").example_id, d.split("dev").example_id);
  o.seed = 2;
  EXPECT_NE(prepare_text(o).split("dev").example_id, d.split("dev").example_id);
}

TEST(Prepare, BadRowsNameFileAndLineOrAreSkipped) {
  const auto dir = test::temp_dir("prepbad");
  const auto p = write(dir, "bad.csv",
                       "text,label\nfine,pos\nalso fine,neg\nwhat,maybe\n\"broken\"x,pos\nbad \xff utf8,neg\nshort\n"
                       "last,pos\n");
  auto o = base(p);
  o.dev_fraction = o.test_fraction = 0;
  auto msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find(p + ":4: unknown label 'maybe' (expected one of neg, pos)"), std::string::npos) << msg;
  o.labels = {"neg", "pos", "maybe"};
  msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find(p + ":5: unexpected character 'x'"), std::string::npos) << msg;
  o.skip_bad_rows = true;
  PrepareReport rep;
  auto d = prepare_text(o, &rep);
  EXPECT_EQ(rep.rows, 7);
  EXPECT_EQ(rep.bad_rows, 3);
  ASSERT_EQ(rep.bad_examples.size(), 3u);
  EXPECT_NE(rep.bad_examples[1].find(p + ":6: text: invalid UTF-8 at byte 4"), std::string::npos)
      << rep.bad_examples[1];
  EXPECT_NE(rep.bad_examples[2].find(p + ":7: has 1 fields"), std::string::npos) << rep.bad_examples[2];
  auto ids = d.split("train").example_id;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{0, 1, 2, 6}));
  // A missing column is a header error, with or without --skip-bad-rows.
  o.text_column = "sentence";
  msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find(p + ": the header has no text column 'sentence' (columns: text, label)"), std::string::npos)
      << msg;
  o.skip_bad_rows = false;
  msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find(p + ": the header has no text column 'sentence'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("skip-bad-rows"), std::string::npos) << msg;
}

TEST(Prepare, PairsGetTypeIdsAndLabelsDefaultToSortedValues) {
  const auto dir = test::temp_dir("preppair");
  const auto p =
      write(dir, "p.jsonl",
            "{\"q\": \"What is the capital of France?\", \"a\": \"Paris is the capital of France.\", \"y\": 1}\n"
            "{\"q\": \"short\", \"a\": \"x\", \"y\": 0}\n{\"q\": \"z\", \"a\": \"w\", \"y\": 2}\n");
  PrepareOptions o;
  o.input = p;
  o.vocab = vocab_path();
  o.text_column = "q";
  o.pair_column = "a";
  o.label_column = "y";
  o.max_length = 8;
  o.dev_fraction = o.test_fraction = 0;
  PrepareReport rep;
  auto d = prepare_text(o, &rep);
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(rep.truncated, 1);
  const auto& s = d.split("train");
  // Rows are in a seeded order within the split: find record 0.
  const auto r = std::find(s.example_id.begin(), s.example_id.end(), 0) - s.example_id.begin();
  std::vector<std::int32_t> ids(s.input_ids.begin() + r * 8, s.input_ids.begin() + r * 8 + 8);
  std::vector<std::int32_t> types(s.token_type_ids.begin() + r * 8, s.token_type_ids.begin() + r * 8 + 8);
  // Golden (tokenizers, LongestFirst, max_length 8): [CLS] what is [SEP] paris is the [SEP].
  EXPECT_EQ(ids, (std::vector<std::int32_t>{101, 2054, 2003, 102, 3000, 2003, 1996, 102}));
  EXPECT_EQ(types, (std::vector<std::int32_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(s.labels[i], (std::vector<std::int64_t>{1, 0, 2})[s.example_id[i]]);
}

}  // namespace

// Note [parallel prepare]: the shares of a file (quote parity, record_start) read every record
// exactly once, with the lines and fields of one whole read, wherever the byte boundaries fall.
std::vector<TableRange> shares(const std::string& path, TableFormat format, int w) {
  const auto size = std::filesystem::file_size(path);
  std::vector<TableRange> out(w);
  std::uint64_t quotes = 0, newlines = 0;
  for (int r = 0; r < w; ++r) {
    const auto at = size * r / w;
    const auto [start, skipped] = record_start(path, format, at, format == TableFormat::kCsv && quotes % 2 == 1);
    out[r].begin = start;
    out[r].first_line = static_cast<long>(newlines + skipped) + 1;
    if (r > 0) out[r - 1].end = start;
    const auto c = count_bytes(path, at, size * (r + 1) / w);
    quotes += c.quotes;
    newlines += c.newlines;
  }
  return out;
}

TEST(Table, SharesOfAFileReadEveryRecordOnce) {
  const auto dir = test::temp_dir("shares");
  const auto path = write(dir, "m.csv",
                          "\xEF\xBB\xBFlabel,text\r\n1,\"two\nlines\"\r\n\n-1,\"a \"\"q\"\" b\"\n1,\"\n\n\"\n-1,plain\n"
                          "1,\"x,\ny\nz\"\n-1,last");
  TableOptions o;
  const auto whole = rows_of(path, o);
  ASSERT_EQ(whole.size(), 6u);
  for (int w = 1; w <= 12; ++w) {
    std::vector<TableRow> got;
    std::uint64_t stop = 0;
    for (const auto& r : shares(path, TableFormat::kCsv, w)) {
      stop = read_table(path, o, r, [&](TableRow& row) { got.push_back(row); });
      if (r.end != UINT64_MAX) EXPECT_EQ(stop, r.end) << w << " shares";
    }
    EXPECT_EQ(stop, std::filesystem::file_size(path));
    ASSERT_EQ(got.size(), whole.size()) << w << " shares";
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].line, whole[i].line) << w << " shares, record " << i;
      EXPECT_EQ(got[i].fields, whole[i].fields) << w << " shares, record " << i;
    }
  }
}

TEST(Prepare, OneAndThreePartsWriteTheSameDataSetAsPrepareText) {
  const auto dir = test::temp_dir("parts");
  std::string body = "text,label\n";
  for (int i = 0; i < 90; ++i)
    body += (i % 3 ? "\"a fine\nfilm " : "\"Hello, \"\"world\"\" ") + std::to_string(i) + "\"," +
            (i % 2 ? "pos" : "neg") + "\n";
  for (bool mlm : {false, true}) {
    auto o = base(write(dir, "d.csv", body));
    o.mlm = mlm;
    o.labels.clear();  // classes from the data (none for masked LM)
    const auto want = write_dataset(dir + "/mem.h5", prepare_text(o));
    for (int w : {1, 3}) {
      std::vector<PreparePart> parts;
      int k = 0;
      for (const auto& r : shares(o.input, TableFormat::kCsv, w)) {
        auto p = prepare_part(o, r, dir, k++);
        parts.push_back(prepare_part_from_json(to_json(p)));
        EXPECT_EQ(parts.back().stop, r.end == UINT64_MAX ? std::filesystem::file_size(o.input) : r.end);
      }
      PrepareReport rep;
      const auto out = dir + "/p" + std::to_string(w) + ".h5";
      EXPECT_EQ(merge_parts(o, parts, out, &rep), want) << w << " parts, mlm " << mlm;
      EXPECT_EQ(rep.rows, 90);
      EXPECT_EQ(rep.dev, 23);
      EXPECT_EQ(rep.train, 44);
      EXPECT_EQ(read_dataset(out).content_hash, want);
    }
  }
  // A bad row in a later share names its line in the file.
  auto o = base(write(dir, "bad.csv", body + "\"x\",maybe\n"));
  const auto r = shares(o.input, TableFormat::kCsv, 3).back();
  const auto msg = test::error_of([&] { prepare_part(o, r, dir, 9); });
  EXPECT_NE(msg.find("bad.csv:" + std::to_string(1 + 90 + 60 + 1) + ": unknown label 'maybe'"), std::string::npos)
      << msg;
}

TEST(Prepare, PartSummariesCarryMessagesWithInvalidUtf8) {
  // A skipped row's message may quote raw bytes of a file that is not UTF-8.
  PreparePart p;
  p.records = 3;
  p.report.bad_examples = {"x.csv:3: unexpected character '\xC3' after the closing quote"};
  const auto back = prepare_part_from_json(to_json(p));
  EXPECT_EQ(back.records, 3);
  ASSERT_EQ(back.report.bad_examples.size(), 1u);
  EXPECT_NE(back.report.bad_examples[0].find("x.csv:3"), std::string::npos);
}

// Note [regression]: the label column as real-valued targets, in memory and through parallel parts.
TEST(Prepare, RegressionScoresFollowTheirRowsThroughTextAndParts) {
  const auto dir = test::temp_dir("regr");
  std::string body = "text,score\n";
  for (int i = 0; i < 60; ++i) body += "\"film number " + std::to_string(i) + "\"," + std::to_string(i * 0.25 - 3) + "\n";
  auto o = base(write(dir, "r.csv", body));
  o.labels.clear();
  o.regression = true;
  o.label_column = "score";
  const auto d = prepare_text(o);
  EXPECT_TRUE(d.regression);
  EXPECT_EQ(d.label_names, std::vector<std::string>{"score"});
  std::int64_t rows = 0;
  for (const auto& [name, s] : d.splits) {
    ASSERT_EQ(s.scores.size(), static_cast<std::size_t>(s.n)) << name;
    for (std::int64_t i = 0; i < s.n; ++i) {
      EXPECT_EQ(s.labels[i], 0);
      EXPECT_FLOAT_EQ(s.scores[i], static_cast<float>(s.example_id[i] * 0.25 - 3)) << name << " row " << i;
    }
    rows += s.n;
  }
  EXPECT_EQ(rows, 60);
  const auto want = write_dataset(dir + "/mem.h5", d);
  const auto back = read_dataset(dir + "/mem.h5");
  EXPECT_TRUE(back.regression);
  const auto dev = back.split("dev").all();
  EXPECT_EQ(dev.scores, d.splits.at("dev").scores);
  const auto picked = back.split("train").select({3, 1});
  ASSERT_EQ(picked.scores.size(), 2u);
  EXPECT_EQ(picked.scores[0], d.splits.at("train").scores[3]);
  for (int w : {1, 3}) {
    std::vector<PreparePart> parts;
    int k = 0;
    for (const auto& r : shares(o.input, TableFormat::kCsv, w))
      parts.push_back(prepare_part_from_json(to_json(prepare_part(o, r, dir, k++))));
    PrepareReport rep;
    EXPECT_EQ(merge_parts(o, parts, dir + "/p" + std::to_string(w) + ".h5", &rep), want) << w << " parts";
  }
  // Another target changes the content hash.
  EXPECT_EQ(dataset_content_hash(d), want);
  auto other = d;
  other.splits.at("train").scores[0] += 1;
  EXPECT_NE(dataset_content_hash(other), want);
  // --label-names names the target.
  o.label_names = {"valence"};
  EXPECT_EQ(prepare_text(o).label_names, std::vector<std::string>{"valence"});
  o.label_names = {"a", "b"};
  const auto msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find("--regression has one target; --label-names gives 2 names"), std::string::npos) << msg;
}

TEST(Prepare, RegressionRefusesBadScoresAndClassOptions) {
  const auto dir = test::temp_dir("regrbad");
  auto o = base(write(dir, "b.csv", "text,score\nfine,1.5\nbad,high\n"));
  o.labels.clear();
  o.regression = true;
  o.label_column = "score";
  auto msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find("b.csv:3: score 'high' in column 'score' is not a finite number"), std::string::npos) << msg;
  o.input = write(dir, "c.csv", "text,score\nfine,1.5\nworse,inf\n");
  msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find("c.csv:3: score 'inf'"), std::string::npos) << msg;
  o.skip_bad_rows = true;
  PrepareReport rep;
  EXPECT_EQ(prepare_text(o, &rep).splits.at("train").n + rep.bad_rows, 2);
  EXPECT_EQ(rep.bad_rows, 1);
  o.labels = {"a", "b"};
  msg = test::error_of([&] { prepare_text(o); });
  EXPECT_NE(msg.find("--regression takes the label column as numbers"), std::string::npos) << msg;
}

TEST(Dataset, RegressionScoresAreCheckedAgainstTheirLabels) {
  const auto dir = test::temp_dir("regrcheck");
  Dataset d;
  d.task = "features";
  d.regression = true;
  d.label_names = {"y"};
  auto& s = d.splits["train"];
  s.n = 3;
  s.dim = 1;
  s.features = {1, 2, 3};
  s.labels = {0, kIgnoreLabel, 0};
  s.example_id = {0, 1, 2};
  s.scores = {0.5f, std::nanf(""), -1.0f};
  write_dataset(dir + "/ok.h5", d);
  const auto back = read_dataset(dir + "/ok.h5").split("train").all();
  EXPECT_EQ(back.labeled_rows(), 2);
  EXPECT_TRUE(std::isnan(back.scores[1]));
  s.scores[0] = std::nanf("");
  auto msg = test::error_of([&] { write_dataset(dir + "/bad.h5", d); });
  EXPECT_NE(msg.find("example 0 has score nan, expected a finite target"), std::string::npos) << msg;
  s.scores = {0.5f, 2.0f, -1.0f};
  msg = test::error_of([&] { write_dataset(dir + "/bad.h5", d); });
  EXPECT_NE(msg.find("example 1 has score 2, expected NaN (the row is unlabeled)"), std::string::npos) << msg;
  s.scores = {0.5f};
  msg = test::error_of([&] { write_dataset(dir + "/bad.h5", d); });
  EXPECT_NE(msg.find("holds 1 scores for 3 rows"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.h5"));
}

}  // namespace distill
