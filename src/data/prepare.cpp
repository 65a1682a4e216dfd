#include "distill/data/prepare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "distill/data/split_rows.h"
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

}  // namespace distill
