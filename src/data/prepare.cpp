#include "distill/data/prepare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "distill/data/sampler.h"
#include "distill/io/h5.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"

namespace distill {

namespace {

struct Example {
  std::int64_t id;
  std::int64_t label;
  Encoding enc;
};

void fill_split(DataSplit& s, const std::vector<const Example*>& rows, long seq) {
  s.n = static_cast<std::int64_t>(rows.size());
  s.seq = seq;
  for (const auto* e : rows) {
    s.input_ids.insert(s.input_ids.end(), e->enc.ids.begin(), e->enc.ids.end());
    s.attention_mask.insert(s.attention_mask.end(), e->enc.attention_mask.begin(), e->enc.attention_mask.end());
    s.token_type_ids.insert(s.token_type_ids.end(), e->enc.type_ids.begin(), e->enc.type_ids.end());
    s.labels.push_back(e->label);
    s.example_id.push_back(e->id);
  }
}

// The split: a seeded permutation of n rows; part[i] is 0 (train), 1 (dev) or 2 (test).
std::vector<int> split_parts(std::int64_t n, const PrepareOptions& o) {
  const auto n_dev = static_cast<std::int64_t>(std::llround(n * o.dev_fraction));
  const auto n_test = static_cast<std::int64_t>(std::llround(n * o.test_fraction));
  const auto order = epoch_order(n, o.seed, 0);
  std::vector<int> part(n);
  for (std::int64_t k = 0; k < n; ++k) part[order[k]] = k < n_dev ? 1 : k < n_dev + n_test ? 2 : 0;
  return part;
}

// The rows of split `k` in a seeded random order.
template <typename T>
std::vector<T> in_split_order(const std::vector<T>& rows, std::uint64_t seed, int k) {
  std::vector<T> out;
  for (auto i : epoch_order(static_cast<std::int64_t>(rows.size()), mix_seed(seed, 0x73706c6974, k), 0))
    out.push_back(rows[i]);
  return out;
}

void check_fractions(const PrepareOptions& o) {
  DISTILL_CHECK(o.dev_fraction >= 0 && o.test_fraction >= 0 && o.dev_fraction + o.test_fraction < 1, ConfigError,
                "dev and test fractions must be >= 0 and leave room for train, got ", o.dev_fraction, " and ",
                o.test_fraction);
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

// prepare_text's options that need no file: the vocabulary given, lengths and fractions in range.
void check_text_options(const PrepareOptions& o) {
  DISTILL_CHECK(!o.vocab.empty(), ConfigError, "prepare needs a vocabulary (--vocab vocab.txt)");
  DISTILL_CHECK(o.max_length >= 4, ConfigError, "--max-length must be at least 4, got ", o.max_length);
  check_fractions(o);
  DISTILL_CHECK(!o.mlm || (o.mask_prob > 0 && o.mask_prob <= 1), ConfigError, "--mask-prob must be in (0, 1], got ",
                o.mask_prob);
  DISTILL_CHECK(o.label_names.empty() || o.label_names.size() == o.labels.size(), ConfigError, "--label-names gives ",
                o.label_names.size(), " names for ", o.labels.size(), " --labels");
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
  if (!o.mlm) table.required_columns[o.label_column] = "label";
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
    const auto* label = o_.mlm ? &none : field(row, o_.label_column, "label");
    if (!label) return;
    std::int64_t y = -1;
    if (!o_.labels.empty() && !label_of(row, *label, &y)) return;
    Example e{row.index, y, {}};
    if (!encode(row, *text, pair, &e.enc)) return;
    if (o_.mlm)
      e.label = 0;
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

// The split: a seeded permutation of the usable rows (split_parts); rows within a split are in a
// seeded random order too (in_split_order), so that shards of consecutive rows are mixed samples
// even when the file is sorted (streaming reads shards in order). Masked LM: tokens are masked
// first (mask_tokens). Fills d.splits and the report's split sizes.
void split_examples(const PrepareOptions& o, const WordPieceTokenizer& tok, std::vector<Example>& examples, Dataset& d,
                    PrepareReport& rep) {
  const auto n = static_cast<std::int64_t>(examples.size());
  const auto part = split_parts(n, o);
  std::vector<std::vector<std::int32_t>> mlm_labels(o.mlm ? n : 0);
  for (std::int64_t i = 0; i < n && o.mlm; ++i)
    mlm_labels[i] = mask_tokens(examples[i].enc, tok, o.seed, examples[i].id, o.mask_prob);
  std::vector<const Example*> rows[3];
  for (std::int64_t i = 0; i < n; ++i) rows[part[i]].push_back(&examples[i]);
  for (int k = 0; k < 3; ++k) rows[k] = in_split_order(rows[k], o.seed, k);
  DISTILL_CHECK(!rows[0].empty(), DataError, o.input, ": no rows left for the train split");
  const char* names[3] = {"train", "dev", "test"};
  for (int k = 0; k < 3; ++k)
    if (!rows[k].empty()) fill_split(d.splits[names[k]], rows[k], o.max_length);
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

namespace {

// Rows of numbers from a CSV file; a first row that does not parse is a header.
void read_numeric_csv(const std::string& path, std::vector<std::vector<double>>& rows, std::vector<long>& lines) {
  std::istringstream in(read_file(path));
  std::string line;
  long no = 0;
  std::size_t width = 0;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<double> row;
    std::string bad;
    std::size_t col = 0;
    for (const auto& f : split(line, ',')) {
      ++col;
      char* end = nullptr;
      const double v = std::strtod(f.c_str(), &end);
      if (f.empty() || *end != '\0') {
        if (bad.empty()) bad = str("column ", col, " is '", f, "', not a number");
      }
      row.push_back(v);
    }
    if (!bad.empty()) {
      DISTILL_CHECK(rows.empty() && no == 1, DataError, path, ":", no, ": ", bad);
      continue;  // the header
    }
    if (width == 0) width = row.size();
    DISTILL_CHECK(row.size() == width, DataError, path, ":", no, ": ", row.size(), " columns, the first row has ",
                  width);
    rows.push_back(std::move(row));
    lines.push_back(no);
  }
}

// Feature rows as read: x[i] and its raw label y[i], from file line (CSV) or row (HDF5) lines[i].
struct FeatureRows {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  std::vector<long> lines;
  bool h5 = false;
};

bool is_h5_path(const std::string& path) {
  return path.size() > 3 && (path.substr(path.size() - 3) == ".h5" || path.substr(path.size() - 5) == ".hdf5");
}

// An HDF5 file with datasets "features" [n, d] and "labels" [n].
FeatureRows read_h5_features(const std::string& path) {
  FeatureRows r;
  r.h5 = true;
  auto f = h5::File::open(path);
  DISTILL_CHECK(f.exists("/features") && f.exists("/labels"), DataError, path,
                " needs datasets 'features' [n, d] and 'labels' [n]");
  auto fi = f.info("/features");
  DISTILL_CHECK(fi.shape.size() == 2, DataError, path, ": 'features' must be 2-D, it has ", fi.shape.size(),
                " dimensions");
  auto flat = f.read_vector<double>("/features", h5::Type::kFloat64);
  auto li = f.info("/labels");
  DISTILL_CHECK(li.shape.size() == 1 && li.shape[0] == fi.shape[0], DataError, path, ": 'labels' must be [",
                fi.shape[0], "]");
  r.y = f.read_vector<double>("/labels", h5::Type::kFloat64);
  const auto d = static_cast<std::size_t>(fi.shape[1]);
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    r.x.emplace_back(flat.begin() + i * d, flat.begin() + (i + 1) * d);
    r.lines.push_back(static_cast<long>(i));
  }
  return r;
}

// A CSV of numbers; column `label_index` (negative: from the end) is the label.
FeatureRows read_csv_features(const std::string& path, long label_index) {
  FeatureRows r;
  std::vector<std::vector<double>> rows;
  read_numeric_csv(path, rows, r.lines);
  DISTILL_CHECK(!rows.empty(), DataError, path, " has no rows of numbers");
  const long w = static_cast<long>(rows[0].size());
  const long li = label_index < 0 ? w + label_index : label_index;
  DISTILL_CHECK(w >= 2 && li >= 0 && li < w, ConfigError, "--label-index ", label_index, " is outside the ", w,
                " columns of ", path);
  for (auto& row : rows) {
    r.y.push_back(row[li]);
    row.erase(row.begin() + li);
    r.x.push_back(std::move(row));
  }
  return r;
}

// Checks that labels are integers and features finite; the classes are the sorted distinct labels
// (d.label_names, at least 2). Returns the class of each label value.
std::map<double, std::int64_t> feature_classes(const std::string& input, const FeatureRows& r, Dataset& d) {
  std::set<double> distinct;
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    DISTILL_CHECK(std::isfinite(r.y[i]) && r.y[i] == std::floor(r.y[i]), DataError, input, r.h5 ? " row " : ":",
                  r.lines[i], ": label ", r.y[i], " is not an integer");
    for (std::size_t j = 0; j < r.x[i].size(); ++j)
      DISTILL_CHECK(std::isfinite(r.x[i][j]), DataError, input, r.h5 ? " row " : ":", r.lines[i], ": feature ", j,
                    " is not finite");
    distinct.insert(r.y[i]);
  }
  std::map<double, std::int64_t> class_of;
  for (double v : distinct) {
    class_of[v] = static_cast<std::int64_t>(d.label_names.size());
    d.label_names.push_back(std::to_string(static_cast<long long>(v)));
  }
  DISTILL_CHECK(d.label_names.size() >= 2, DataError, input, " has ", d.label_names.size(),
                " distinct label(s): classification needs at least 2");
  return class_of;
}

// Per feature: mean and standard deviation over the train rows (part 0), so dev/test stay unseen;
// a constant feature gets sd 1 (it stays 0). Without `on`: mean 0, sd 1 (the features unchanged).
void train_moments(const FeatureRows& r, const std::vector<int>& part, std::int64_t dim, bool on,
                   std::vector<double>& mean, std::vector<double>& sd) {
  mean.assign(dim, 0.0);
  sd.assign(dim, 1.0);
  if (!on) return;
  const auto n = static_cast<std::int64_t>(r.x.size());
  std::vector<double> sq(dim, 0.0);
  std::int64_t m = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (part[i] == 0) {
      ++m;
      for (std::int64_t j = 0; j < dim; ++j) mean[j] += r.x[i][j];
    }
  for (auto& v : mean) v /= std::max<std::int64_t>(1, m);
  for (std::int64_t i = 0; i < n; ++i)
    if (part[i] == 0)
      for (std::int64_t j = 0; j < dim; ++j) sq[j] += (r.x[i][j] - mean[j]) * (r.x[i][j] - mean[j]);
  for (std::int64_t j = 0; j < dim; ++j) {
    sd[j] = std::sqrt(sq[j] / std::max<std::int64_t>(1, m));
    if (sd[j] == 0) sd[j] = 1;  // a constant feature stays 0
  }
}

// The splits (split_parts; rows within a split in_split_order), features scaled by mean and sd.
void split_features(const PrepareOptions& o, const FeatureRows& r, const std::map<double, std::int64_t>& class_of,
                    Dataset& d) {
  const auto n = static_cast<std::int64_t>(r.x.size());
  const auto dim = static_cast<std::int64_t>(r.x[0].size());
  const auto part = split_parts(n, o);
  std::vector<double> mean, sd;
  train_moments(r, part, dim, o.standardize, mean, sd);
  const char* names[3] = {"train", "dev", "test"};
  std::vector<std::int64_t> members[3];
  for (std::int64_t i = 0; i < n; ++i) members[part[i]].push_back(i);
  std::vector<std::int64_t> order;
  for (int k = 0; k < 3; ++k)
    for (auto i : in_split_order(members[k], o.seed, k)) order.push_back(i);
  for (auto i : order) {
    auto& s = d.splits[names[part[i]]];
    s.dim = dim;
    ++s.n;
    for (std::int64_t j = 0; j < dim; ++j) s.features.push_back(static_cast<float>((r.x[i][j] - mean[j]) / sd[j]));
    s.labels.push_back(class_of.at(r.y[i]));
    s.example_id.push_back(i);
  }
  DISTILL_CHECK(d.splits.count("train"), DataError, o.input, ": no rows left for the train split");
}

}  // namespace

Dataset prepare_features(const PrepareOptions& o, PrepareReport* report) {
  check_fractions(o);
  const auto rows = is_h5_path(o.input) ? read_h5_features(o.input) : read_csv_features(o.input, o.label_index);
  Dataset d;
  d.task = "features";
  const auto class_of = feature_classes(o.input, rows, d);
  split_features(o, rows, class_of, d);
  PrepareReport rep;
  rep.rows = static_cast<std::int64_t>(rows.x.size());
  const char* names[3] = {"train", "dev", "test"};
  for (int k = 0; k < 3; ++k)
    if (d.splits.count(names[k])) (k == 0 ? rep.train : k == 1 ? rep.dev : rep.test) = d.splits[names[k]].n;
  if (report) *report = rep;
  return d;
}

}  // namespace distill
