#include "distill/data/prepare.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <sstream>

#include "distill/data/dataset_writer.h"
#include "distill/data/prepare_runs.h"
#include "distill/data/split_rows.h"
#include "distill/io/h5.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"

namespace distill {

namespace {

void fill_split(DataSplit& s, const std::vector<const Example*>& rows, long seq, bool regression) {
  s.n = static_cast<std::int64_t>(rows.size());
  s.seq = seq;
  for (const auto* e : rows) {
    s.input_ids.insert(s.input_ids.end(), e->enc.ids.begin(), e->enc.ids.end());
    s.attention_mask.insert(s.attention_mask.end(), e->enc.attention_mask.begin(), e->enc.attention_mask.end());
    s.token_type_ids.insert(s.token_type_ids.end(), e->enc.type_ids.begin(), e->enc.type_ids.end());
    s.labels.push_back(e->label);
    s.example_id.push_back(e->id);
    if (regression) s.scores.push_back(e->score);
  }
}

// BERT's masking of one encoded text (see PrepareOptions::mlm); returns the labels row.
std::vector<std::int32_t> mask_tokens(Encoding& e, const WordPieceTokenizer& tok, std::uint64_t seed, std::int64_t row,
                                      double prob) {
  SplitMix64 rng(mix_seed(seed, 0x6d6c6d, static_cast<std::uint64_t>(row)));
  std::vector<std::int32_t> labels(e.ids.size(), kIgnoreLabel);
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < e.ids.size(); ++i)
    if (e.attention_mask[i] && e.ids[i] != tok.cls_id() && e.ids[i] != tok.sep_id()) candidates.push_back(i);
  if (candidates.empty()) return labels;
  std::vector<std::size_t> chosen;
  for (auto i : candidates)
    if (rng.uniform() < prob) chosen.push_back(i);
  if (chosen.empty()) chosen.push_back(candidates[rng.below(candidates.size())]);
  for (auto i : chosen) {
    labels[i] = e.ids[i];
    const double u = rng.uniform();
    if (u < 0.8)
      e.ids[i] = tok.mask_id();
    else if (u < 0.9)
      e.ids[i] = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(tok.size())));
  }
  return labels;
}

}  // namespace

std::vector<std::string> unlabeled_classes(const PrepareOptions& o) {
  auto names = o.label_names.empty() ? o.labels : o.label_names;
  DISTILL_CHECK(names.size() >= 2, ConfigError, "--unlabeled ", o.input,
                ": name the classes the teacher will label it with (--label-names a,b,... or --labels), at least 2; "
                "got ",
                names.size());
  return names;
}

void check_regression_options(const PrepareOptions& o) {
  if (!o.regression) return;
  DISTILL_CHECK(!o.mlm, ConfigError, "--regression and --mlm: masked-LM data has no targets");
  DISTILL_CHECK(o.labels.empty(), ConfigError, "--regression takes the label column as numbers; --labels lists classes");
  DISTILL_CHECK(o.label_names.size() <= 1, ConfigError, "--regression has one target; --label-names gives ",
                o.label_names.size(), " names");
}

namespace {

// A regression data set's one output: named by --label-names, else after the label column.
std::vector<std::string> regression_label_names(const PrepareOptions& o) {
  return {o.label_names.empty() ? o.label_column : o.label_names[0]};
}

// The whole of `s` as a finite float (surrounding blanks allowed), or nothing.
std::optional<float> parse_finite_float(const std::string& s) {
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  while (end && (*end == ' ' || *end == '\t')) ++end;
  if (end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(v) ||
      std::fabs(v) > std::numeric_limits<float>::max())
    return std::nullopt;
  return static_cast<float>(v);
}

// prepare_text's options that need no file: the vocabulary given, lengths and fractions in range.
void check_text_options(const PrepareOptions& o) {
  DISTILL_CHECK(!o.vocab.empty(), ConfigError, "prepare needs a vocabulary (--vocab vocab.txt)");
  DISTILL_CHECK(o.max_length >= 4, ConfigError, "--max-length must be at least 4, got ", o.max_length);
  check_fractions(o);
  DISTILL_CHECK(!o.mlm || (o.mask_prob > 0 && o.mask_prob <= 1), ConfigError, "--mask-prob must be in (0, 1], got ",
                o.mask_prob);
  check_regression_options(o);
  DISTILL_CHECK(o.label_names.empty() || o.label_names.size() == o.labels.size() ||
                    ((o.unlabeled || o.regression) && o.labels.empty()),
                ConfigError, "--label-names gives ", o.label_names.size(), " names for ", o.labels.size(), " --labels");
  DISTILL_CHECK(!(o.unlabeled && o.mlm), ConfigError,
                "--unlabeled and --mlm: masked-LM data has no class labels anyway");
}

// The vocabulary, lower-casing unless --cased; masked-LM data needs its [MASK] token.
WordPieceTokenizer load_tokenizer(const PrepareOptions& o) {
  TokenizerOptions topt;
  topt.lowercase = !o.cased;
  auto tok = WordPieceTokenizer::from_file(o.vocab, topt);
  DISTILL_CHECK(!o.mlm || tok.mask_id() >= 0, DataError, o.vocab, " has no [MASK] token; masked-LM data needs one");
  return tok;
}

// The table's format and the columns prepare_text reads from it.
TableOptions table_options(const PrepareOptions& o) {
  TableOptions table;
  table.format = o.format.empty() ? table_format_of(o.input) : parse_table_format(o.format);
  table.column_names = o.column_names;
  table.required_columns[o.text_column] = "text";
  if (!o.pair_column.empty()) table.required_columns[o.pair_column] = "pair";
  if (!o.mlm && !o.unlabeled) table.required_columns[o.label_column] = "label";
  return table;
}

// Turns the table's records into examples, one at a time, in file order: picks the columns, maps
// the label (--labels) and tokenizes. A bad record throws DataError "file:line: reason" or, with
// --skip-bad-rows, is counted in the report and left out.
class ExampleReader {
 public:
  ExampleReader(const PrepareOptions& o, const WordPieceTokenizer& tok, PrepareReport& rep)
      : o_(o), tok_(tok), rep_(rep) {
    for (std::size_t i = 0; i < o.labels.size(); ++i) label_id_[o.labels[i]] = static_cast<std::int64_t>(i);
    DISTILL_CHECK(label_id_.size() == o.labels.size(), ConfigError, "--labels repeats a value");
  }

  void add(const TableRow& row) {
    ++rep_.rows;
    if (!row.error.empty()) return bad(row, row.error);
    const auto* text = field(row, o_.text_column, "text");
    if (!text) return;
    const std::string* pair = nullptr;
    if (!o_.pair_column.empty() && !(pair = field(row, o_.pair_column, "pair"))) return;
    const std::string none;
    const auto* label = o_.mlm || o_.unlabeled ? &none : field(row, o_.label_column, "label");
    if (!label) return;
    std::int64_t y = -1;
    float score = std::numeric_limits<float>::quiet_NaN();
    if (!o_.unlabeled && !o_.labels.empty() && !label_of(row, *label, &y)) return;
    if (o_.regression && !o_.unlabeled && !score_of(row, *label, &score)) return;
    Example e{row.index, y, {}, row.line, score};
    if (!encode(row, *text, pair, &e.enc)) return;
    if (o_.mlm || (o_.regression && !o_.unlabeled))
      e.label = 0;
    else if (o_.unlabeled)
      e.label = kIgnoreLabel;
    else if (o_.labels.empty())
      raw_labels.push_back(*label);
    examples.push_back(std::move(e));
  }

  std::vector<Example> examples;
  std::vector<std::string> raw_labels;  // per example, when the label set comes from the data

 private:
  const PrepareOptions& o_;
  const WordPieceTokenizer& tok_;
  PrepareReport& rep_;
  std::map<std::string, std::int64_t> label_id_;  // --labels value -> class

  void bad(const TableRow& row, const std::string& why) {
    const auto msg = str(o_.input, ":", row.line, ": ", why);
    if (!o_.skip_bad_rows) throw DataError(msg + " (--skip-bad-rows skips such rows)");
    ++rep_.bad_rows;
    if (rep_.bad_examples.size() < 5) rep_.bad_examples.push_back(msg);
  }

  const std::string* field(const TableRow& row, const std::string& col, const char* role) {
    auto it = row.fields.find(col);
    if (it == row.fields.end()) {
      bad(row, str("no ", role, " column '", col, "'"));
      return nullptr;
    }
    return &it->second;
  }

  bool label_of(const TableRow& row, const std::string& label, std::int64_t* y) {
    auto it = label_id_.find(label);
    if (it == label_id_.end()) {
      std::string known;
      for (const auto& l : o_.labels) known += (known.empty() ? "" : ", ") + l;
      bad(row, str("unknown label '", label, "' (expected one of ", known, ")"));
      return false;
    }
    *y = it->second;
    return true;
  }

  bool score_of(const TableRow& row, const std::string& label, float* y) {
    const auto v = parse_finite_float(label);
    if (!v) {
      bad(row, str("score '", label.substr(0, 40), "' in column '", o_.label_column, "' is not a finite number"));
      return false;
    }
    *y = *v;
    return true;
  }

  bool encode(const TableRow& row, const std::string& text, const std::string* pair, Encoding* enc) {
    try {
      auto x = tok_.tokenize(text);
      std::vector<std::int32_t> y;
      if (pair) y = tok_.tokenize(*pair);
      if (static_cast<long>(x.size() + y.size()) + (pair ? 3 : 2) > o_.max_length) ++rep_.truncated;
      *enc = tok_.encode_ids(std::move(x), pair ? &y : nullptr, o_.max_length);
    } catch (const DataError& err) {
      bad(row, str(o_.text_column, (pair ? " or " + o_.pair_column : std::string()), ": ", err.what()));
      return false;
    }
    return true;
  }
};

// The classes: none (masked LM), the sorted distinct labels of the data (then each example's
// label is set), or --labels; at least 2 for classification.
void set_classes(const PrepareOptions& o, ExampleReader& read, Dataset& d) {
  if (o.mlm) {
    d.task = "mlm";
  } else if (o.regression) {
    d.regression = true;
    d.label_names = regression_label_names(o);
    return;
  } else if (o.unlabeled) {
    d.label_names = unlabeled_classes(o);
  } else if (o.labels.empty()) {
    std::set<std::string> distinct(read.raw_labels.begin(), read.raw_labels.end());
    std::map<std::string, std::int64_t> ids;
    for (const auto& l : distinct) {
      ids[l] = static_cast<std::int64_t>(d.label_names.size());
      d.label_names.push_back(l);
    }
    for (std::size_t i = 0; i < read.examples.size(); ++i) read.examples[i].label = ids[read.raw_labels[i]];
  } else {
    d.label_names = o.label_names.empty() ? o.labels : o.label_names;
  }
  DISTILL_CHECK(o.mlm || d.label_names.size() >= 2, DataError, o.input, " has ", d.label_names.size(),
                " distinct label(s) in column '", o.label_column, "': classification needs at least 2");
}

// The split (Note [parallel prepare]): the usable rows sorted by record_key(seed, line); the first
// round(n * dev_fraction) are dev, the next round(n * test_fraction) test, the rest train, each in
// that order, so that shards of consecutive rows are mixed samples even when the file is sorted.
// Masked LM: tokens are masked first (mask_tokens). Fills d.splits and the report's split sizes.
void split_examples(const PrepareOptions& o, const WordPieceTokenizer& tok, std::vector<Example>& examples, Dataset& d,
                    PrepareReport& rep) {
  const auto n = static_cast<std::int64_t>(examples.size());
  const auto [n_dev, n_test] = split_sizes(n, o);
  std::vector<std::vector<std::int32_t>> mlm_labels(o.mlm ? n : 0);
  for (std::int64_t i = 0; i < n && o.mlm; ++i)
    mlm_labels[i] = mask_tokens(examples[i].enc, tok, o.seed, examples[i].id, o.mask_prob);
  std::vector<std::pair<std::uint64_t, std::int64_t>> order;
  for (std::int64_t i = 0; i < n; ++i) order.emplace_back(record_key(o.seed, examples[i].line), i);
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : examples[a.second].line < examples[b.second].line;
  });
  std::vector<const Example*> rows[3];
  for (std::int64_t p = 0; p < n; ++p)
    rows[p < n_dev ? 1 : p < n_dev + n_test ? 2 : 0].push_back(&examples[order[p].second]);
  DISTILL_CHECK(!rows[0].empty(), DataError, o.input, ": no rows left for the train split");
  const char* names[3] = {"train", "dev", "test"};
  for (int k = 0; k < 3; ++k)
    if (!rows[k].empty()) fill_split(d.splits[names[k]], rows[k], o.max_length, o.regression);
  if (o.mlm)
    for (int k = 0; k < 3; ++k)
      for (const auto* e : rows[k]) {
        const auto& y = mlm_labels[e - examples.data()];
        auto& dst = d.splits[names[k]].mlm_labels;
        dst.insert(dst.end(), y.begin(), y.end());
      }
  rep.train = static_cast<std::int64_t>(rows[0].size());
  rep.dev = static_cast<std::int64_t>(rows[1].size());
  rep.test = static_cast<std::int64_t>(rows[2].size());
}

}  // namespace

std::uint64_t record_key(std::uint64_t seed, long line) {
  return mix_seed(seed, 0x6f72646572, static_cast<std::uint64_t>(line));
}

std::pair<std::int64_t, std::int64_t> split_sizes(std::int64_t n, const PrepareOptions& o) {
  return {static_cast<std::int64_t>(std::llround(static_cast<double>(n) * o.dev_fraction)),
          static_cast<std::int64_t>(std::llround(static_cast<double>(n) * o.test_fraction))};
}

Dataset prepare_text(const PrepareOptions& o, PrepareReport* report) {
  check_text_options(o);
  const auto tok = load_tokenizer(o);
  const auto table = table_options(o);
  PrepareReport rep;
  ExampleReader read(o, tok, rep);
  read_table(o.input, table, [&](TableRow& row) { read.add(row); });
  DISTILL_CHECK(!read.examples.empty(), DataError, o.input, " has no usable rows (", rep.rows, " read, ", rep.bad_rows,
                " bad)");

  Dataset d;
  d.vocab_size = tok.size();
  d.vocab_hash = tok.vocab_hash();
  d.max_length = o.max_length;
  set_classes(o, read, d);
  split_examples(o, tok, read.examples, d, rep);
  if (report) *report = rep;
  return d;
}

}  // namespace distill

// Parallel prepare (Note [parallel prepare]) ------------------------------------------------------

namespace distill {

std::string to_json(const PreparePart& p) {
  return nlohmann::json{{"records", p.records},
                        {"stop", p.stop},
                        {"runs", p.runs},
                        {"labels", p.labels},
                        {"rows", p.report.rows},
                        {"bad_rows", p.report.bad_rows},
                        {"truncated", p.report.truncated},
                        {"bad_examples", p.report.bad_examples}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // messages may quote invalid UTF-8
}

PreparePart prepare_part_from_json(const std::string& s) {
  const auto j = nlohmann::json::parse(s);
  PreparePart p;
  p.records = j.at("records");
  p.stop = j.at("stop");
  p.runs = j.at("runs").get<std::vector<std::string>>();
  p.labels = j.at("labels").get<std::vector<std::string>>();
  p.report.rows = j.at("rows");
  p.report.bad_rows = j.at("bad_rows");
  p.report.truncated = j.at("truncated");
  p.report.bad_examples = j.at("bad_examples").get<std::vector<std::string>>();
  return p;
}

PreparePart prepare_part(const PrepareOptions& o, const TableRange& range, const std::string& dir, int part) {
  check_text_options(o);
  const auto tok = load_tokenizer(o);
  PreparePart out;
  ExampleReader read(o, tok, out.report);
  std::map<std::string, std::int64_t> local;  // raw label -> index in out.labels (labels from the data)
  std::vector<RunRow> rows;
  const std::size_t run_rows = std::max<std::size_t>(1024, (std::size_t{128} << 20) / (12 * o.max_length + 64));
  out.stop = read_table(o.input, table_options(o), range, [&](TableRow& row) {
    ++out.records;
    read.add(row);
    if (read.examples.empty()) return;
    Example& e = read.examples.back();
    if (!o.mlm && !o.unlabeled && !o.regression && o.labels.empty()) {
      auto it = local.emplace(read.raw_labels.back(), static_cast<std::int64_t>(local.size())).first;
      if (it->second == static_cast<std::int64_t>(out.labels.size())) out.labels.push_back(it->first);
      e.label = it->second;
    }
    e.id -= range.first_index;  // the record's index within the share (made global by merge_parts)
    rows.push_back({record_key(o.seed, e.line), std::move(e)});
    read.examples.clear();
    read.raw_labels.clear();
    if (rows.size() >= run_rows)
      out.runs.push_back(write_run(rows, o.max_length, dir, part, static_cast<int>(out.runs.size())));
  });
  if (!rows.empty()) out.runs.push_back(write_run(rows, o.max_length, dir, part, static_cast<int>(out.runs.size())));
  return out;
}

namespace {

// The data set's header and, for labels from the data, each part's local label -> class.
Dataset merged_header(const PrepareOptions& o, const WordPieceTokenizer& tok, const std::vector<PreparePart>& parts,
                      std::vector<std::vector<std::int64_t>>& classes) {
  Dataset d;
  d.vocab_size = tok.size();
  d.vocab_hash = tok.vocab_hash();
  d.max_length = o.max_length;
  if (o.mlm) {
    d.task = "mlm";
  } else if (o.regression) {
    d.regression = true;
    d.label_names = regression_label_names(o);
    return d;
  } else if (o.unlabeled) {
    d.label_names = unlabeled_classes(o);
  } else if (o.labels.empty()) {
    std::set<std::string> distinct;
    for (const auto& p : parts) distinct.insert(p.labels.begin(), p.labels.end());
    d.label_names.assign(distinct.begin(), distinct.end());
    for (const auto& p : parts) {
      classes.emplace_back();
      for (const auto& l : p.labels)
        classes.back().push_back(std::lower_bound(d.label_names.begin(), d.label_names.end(), l) -
                                 d.label_names.begin());
    }
  } else {
    d.label_names = o.label_names.empty() ? o.labels : o.label_names;
  }
  DISTILL_CHECK(o.mlm || d.label_names.size() >= 2, DataError, o.input, " has ", d.label_names.size(),
                " distinct label(s) in column '", o.label_column, "': classification needs at least 2");
  return d;
}

// Appends merged examples to the writer, a block of one split at a time.
class MergedSplits {
 public:
  MergedSplits(DatasetWriter& w, long seq, bool regression) : w_(w), seq_(seq), regression_(regression) {
    block_.seq = seq;
  }
  void add(const std::string& split, const Example& e, const std::vector<std::int32_t>& mlm) {
    if (split != split_ || block_.n == kDatasetChunkRows) flush();
    split_ = split;
    block_.input_ids.insert(block_.input_ids.end(), e.enc.ids.begin(), e.enc.ids.end());
    block_.attention_mask.insert(block_.attention_mask.end(), e.enc.attention_mask.begin(), e.enc.attention_mask.end());
    block_.token_type_ids.insert(block_.token_type_ids.end(), e.enc.type_ids.begin(), e.enc.type_ids.end());
    block_.mlm_labels.insert(block_.mlm_labels.end(), mlm.begin(), mlm.end());
    block_.labels.push_back(mlm.empty() ? e.label : 0);
    block_.example_id.push_back(e.id);
    if (regression_) block_.scores.push_back(e.score);
    ++block_.n;
  }
  void flush() {
    if (block_.n > 0) w_.append(split_, block_);
    block_ = DataSplit{};
    block_.seq = seq_;
  }

 private:
  DatasetWriter& w_;
  long seq_;
  bool regression_;
  DataSplit block_;
  std::string split_;
};

// Sums the parts' reports (bad row messages in file order, the first few).
PrepareReport summed_report(const std::vector<PreparePart>& parts) {
  PrepareReport rep;
  for (const auto& p : parts) {
    rep.rows += p.report.rows;
    rep.bad_rows += p.report.bad_rows;
    rep.truncated += p.report.truncated;
    for (const auto& m : p.report.bad_examples)
      if (rep.bad_examples.size() < 5) rep.bad_examples.push_back(m);
  }
  return rep;
}

}  // namespace

std::string merge_parts(const PrepareOptions& o, const std::vector<PreparePart>& parts, const std::string& out,
                        PrepareReport* report) {
  auto rep = summed_report(parts);
  const std::int64_t usable = rep.rows - rep.bad_rows;
  DISTILL_CHECK(usable > 0, DataError, o.input, " has no usable rows (", rep.rows, " read, ", rep.bad_rows, " bad)");
  const auto tok = load_tokenizer(o);
  std::vector<std::vector<std::int64_t>> classes;
  const Dataset header = merged_header(o, tok, parts, classes);
  std::vector<std::int64_t> offset(parts.size() + 1, 0);  // first record index of each part
  std::size_t run_count = 0;
  for (const auto& p : parts) run_count += p.runs.size();
  // Read buffers share 64 MiB: memory stays bounded whatever the number of runs.
  const auto block = static_cast<hsize_t>(std::max<std::size_t>(
      16, (std::size_t{64} << 20) / std::max<std::size_t>(1, run_count) / (12 * o.max_length + 32)));
  std::vector<std::unique_ptr<RunReader>> runs;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    offset[p + 1] = offset[p] + parts[p].records;
    for (const auto& r : parts[p].runs)
      runs.push_back(std::make_unique<RunReader>(r, static_cast<int>(p), o.max_length, std::min<hsize_t>(block, 1024)));
  }
  const auto [n_dev, n_test] = split_sizes(usable, o);
  DISTILL_CHECK(usable - n_dev - n_test > 0, DataError, o.input, ": no rows left for the train split");
  // Smallest (key, line) first.
  auto later = [&](std::size_t a, std::size_t b) {
    return runs[a]->key() != runs[b]->key() ? runs[a]->key() > runs[b]->key() : runs[a]->line() > runs[b]->line();
  };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> heap(later);
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (!runs[i]->done()) heap.push(i);
  DatasetWriter writer(out, header, /*check_ids=*/false);  // ids are record numbers: unique
  MergedSplits splits(writer, o.max_length, o.regression);
  for (std::int64_t p = 0; !heap.empty(); ++p) {
    const auto i = heap.top();
    heap.pop();
    const int part = runs[i]->part();
    Example e = runs[i]->take();
    if (!runs[i]->done()) heap.push(i);
    e.id += offset[part];
    if (!classes.empty()) e.label = classes[part][e.label];
    std::vector<std::int32_t> mlm;
    if (o.mlm) mlm = mask_tokens(e.enc, tok, o.seed, e.id, o.mask_prob);
    splits.add(p < n_dev ? "dev" : p < n_dev + n_test ? "test" : "train", e, mlm);
  }
  splits.flush();
  rep.dev = n_dev;
  rep.test = n_test;
  rep.train = usable - n_dev - n_test;
  if (report) *report = rep;
  return writer.finish();
}

}  // namespace distill
