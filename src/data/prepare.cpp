#include "distill/data/prepare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "distill/data/sampler.h"
#include "distill/util/error.h"

namespace distill {

namespace {

struct Example {
  std::int64_t id;
  std::int64_t label;
  Encoding enc;
};

void fill_split(TokenSplit& s, const std::vector<const Example*>& rows, long seq) {
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

}  // namespace

Dataset prepare_text(const PrepareOptions& o, PrepareReport* report) {
  DISTILL_CHECK(!o.vocab.empty(), ConfigError, "prepare needs a vocabulary (--vocab vocab.txt)");
  DISTILL_CHECK(o.max_length >= 4, ConfigError, "--max-length must be at least 4, got ", o.max_length);
  DISTILL_CHECK(o.dev_fraction >= 0 && o.test_fraction >= 0 && o.dev_fraction + o.test_fraction < 1, ConfigError,
                "dev and test fractions must be >= 0 and leave room for train, got ", o.dev_fraction, " and ",
                o.test_fraction);
  DISTILL_CHECK(o.label_names.empty() || o.label_names.size() == o.labels.size(), ConfigError, "--label-names gives ",
                o.label_names.size(), " names for ", o.labels.size(), " --labels");
  TokenizerOptions topt;
  topt.lowercase = !o.cased;
  const auto tok = WordPieceTokenizer::from_file(o.vocab, topt);
  TableOptions table;
  table.format = o.format.empty() ? table_format_of(o.input) : parse_table_format(o.format);
  table.column_names = o.column_names;

  std::map<std::string, std::int64_t> label_id;
  for (std::size_t i = 0; i < o.labels.size(); ++i) label_id[o.labels[i]] = static_cast<std::int64_t>(i);
  DISTILL_CHECK(label_id.size() == o.labels.size(), ConfigError, "--labels repeats a value");

  PrepareReport rep;
  std::vector<Example> examples;
  std::vector<std::string> raw_labels;  // when the label set comes from the data
  auto bad = [&](const TableRow& row, const std::string& why) {
    const auto msg = str(o.input, ":", row.line, ": ", why);
    if (!o.skip_bad_rows) throw DataError(msg + " (--skip-bad-rows skips such rows)");
    ++rep.bad_rows;
    if (rep.bad_examples.size() < 5) rep.bad_examples.push_back(msg);
  };
  read_table(o.input, table, [&](TableRow& row) {
    ++rep.rows;
    if (!row.error.empty()) return bad(row, row.error);
    auto field = [&](const std::string& col, const char* role) -> const std::string* {
      auto it = row.fields.find(col);
      if (it == row.fields.end()) {
        bad(row, str("no ", role, " column '", col, "'"));
        return nullptr;
      }
      return &it->second;
    };
    const auto* text = field(o.text_column, "text");
    if (!text) return;
    const std::string* pair = nullptr;
    if (!o.pair_column.empty() && !(pair = field(o.pair_column, "pair"))) return;
    const auto* label = field(o.label_column, "label");
    if (!label) return;
    std::int64_t y = -1;
    if (!o.labels.empty()) {
      auto it = label_id.find(*label);
      if (it == label_id.end()) {
        std::string known;
        for (const auto& l : o.labels) known += (known.empty() ? "" : ", ") + l;
        return bad(row, str("unknown label '", *label, "' (expected one of ", known, ")"));
      }
      y = it->second;
    }
    Example e{row.index, y, {}};
    try {
      auto x = tok.tokenize(*text);
      std::vector<std::int32_t> y;
      if (pair) y = tok.tokenize(*pair);
      if (static_cast<long>(x.size() + y.size()) + (pair ? 3 : 2) > o.max_length) ++rep.truncated;
      e.enc = tok.encode_ids(std::move(x), pair ? &y : nullptr, o.max_length);
    } catch (const DataError& err) {
      return bad(row, str(o.text_column, (pair ? " or " + o.pair_column : std::string()), ": ", err.what()));
    }
    if (o.labels.empty()) raw_labels.push_back(*label);
    examples.push_back(std::move(e));
  });
  DISTILL_CHECK(!examples.empty(), DataError, o.input, " has no usable rows (", rep.rows, " read, ", rep.bad_rows,
                " bad)");

  Dataset d;
  d.vocab_size = tok.size();
  d.vocab_hash = tok.vocab_hash();
  d.max_length = o.max_length;
  if (o.labels.empty()) {
    std::set<std::string> distinct(raw_labels.begin(), raw_labels.end());
    std::map<std::string, std::int64_t> ids;
    for (const auto& l : distinct) {
      ids[l] = static_cast<std::int64_t>(d.label_names.size());
      d.label_names.push_back(l);
    }
    for (std::size_t i = 0; i < examples.size(); ++i) examples[i].label = ids[raw_labels[i]];
  } else {
    d.label_names = o.label_names.empty() ? o.labels : o.label_names;
  }
  DISTILL_CHECK(d.label_names.size() >= 2, DataError, o.input, " has ", d.label_names.size(),
                " distinct label(s) in column '", o.label_column, "': classification needs at least 2");

  // The split: a seeded permutation of the usable rows; within a split rows keep file order.
  const auto n = static_cast<std::int64_t>(examples.size());
  const auto n_dev = static_cast<std::int64_t>(std::llround(n * o.dev_fraction));
  const auto n_test = static_cast<std::int64_t>(std::llround(n * o.test_fraction));
  const auto order = epoch_order(n, o.seed, 0);
  std::vector<std::int64_t> part(n);
  for (std::int64_t k = 0; k < n; ++k) part[order[k]] = k < n_dev ? 1 : k < n_dev + n_test ? 2 : 0;
  std::vector<const Example*> rows[3];
  for (std::int64_t i = 0; i < n; ++i) rows[part[i]].push_back(&examples[i]);
  DISTILL_CHECK(!rows[0].empty(), DataError, o.input, ": no rows left for the train split");
  const char* names[3] = {"train", "dev", "test"};
  for (int k = 0; k < 3; ++k)
    if (!rows[k].empty()) fill_split(d.splits[names[k]], rows[k], o.max_length);
  rep.train = static_cast<std::int64_t>(rows[0].size());
  rep.dev = static_cast<std::int64_t>(rows[1].size());
  rep.test = static_cast<std::int64_t>(rows[2].size());
  if (report) *report = rep;
  return d;
}

}  // namespace distill
