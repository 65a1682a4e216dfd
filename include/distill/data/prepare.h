// `distill prepare`: a CSV, TSV or JSON-lines table of texts becomes a dataset.h5 of WordPiece ids
// (classification, or masked-LM examples with --mlm); a CSV or HDF5 file of numbers becomes a
// data set of feature vectors. The train/dev/test split is deterministic.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distill/data/dataset.h"
#include "distill/data/table.h"
#include "distill/data/tokenizer.h"

namespace distill {

struct PrepareOptions {
  std::string input;                      // the table
  std::string format;                     // csv | tsv | jsonl; empty = from the extension
  std::vector<std::string> column_names;  // for CSV/TSV files without a header row
  std::string text_column = "text";
  std::string pair_column;  // second segment (token type 1); empty = single texts
  std::string label_column = "label";
  std::vector<std::string> labels;       // label values in class order; empty = sorted distinct values
  std::vector<std::string> label_names;  // names stored for the classes; empty = the label values
  std::string vocab;                     // vocab.txt
  bool cased = false;                    // keep case and accents (cased vocabularies)
  long max_length = 128;                 // padded length, [CLS] and [SEP] included; longer texts are truncated
  double dev_fraction = 0.1, test_fraction = 0.1;  // the rest is train
  std::uint64_t seed = 1;                          // the split is a pure function of (rows, seed)
  bool skip_bad_rows = false;                      // count and skip bad rows instead of failing on the first
  // No label column: every row is unlabeled (Note [unlabeled rows]); the classes come from
  // label_names (or labels), the classes of the teacher that will label the rows.
  bool unlabeled = false;
  // Regression (Note [regression]): the label column holds a real-valued target (a finite number);
  // the data set has one output, named by label_names or after the label column.
  bool regression = false;
  // Masked LM (no label column): each real token other than [CLS]/[SEP] is chosen with
  // mask_prob (at least one per text); a chosen token becomes [MASK] (80%), a random id (10%) or
  // stays (10%). A pure function of (text, seed, row).
  bool mlm = false;
  double mask_prob = 0.15;
  // Feature vectors: every column but the label is a float feature.
  bool features = false;
  long label_index = -1;     // label column; negative counts from the end
  bool standardize = false;  // z-score every feature with the train split's mean and std
};

struct PrepareReport {
  std::int64_t rows = 0, bad_rows = 0, truncated = 0;
  std::vector<std::string> bad_examples;  // the first few "file:line: reason" messages
  std::int64_t train = 0, dev = 0, test = 0;
};

// The classes of an unlabeled data set (PrepareOptions::unlabeled): label_names, else labels; at
// least 2 (ConfigError).
std::vector<std::string> unlabeled_classes(const PrepareOptions& o);

// ConfigError unless the options fit --regression: no --mlm, no --labels, at most one label name.
void check_regression_options(const PrepareOptions& o);

// Reads, tokenizes and splits; throws DataError "file:line: reason" on the first bad row unless
// skip_bad_rows. The example id of a row is its 0-based record number in the file. In memory: the
// same data set prepare_parts + merge_parts write (Note [parallel prepare]).
Dataset prepare_text(const PrepareOptions& o, PrepareReport* report = nullptr);

// Note [parallel prepare]: `distill prepare` of a text table under mpirun. Each rank takes the
// records that start in its share of the file's bytes: a share's first record is found by quote
// parity (CSV quotes counted before it, over all shares), and a rank's parser must stop exactly
// where the next share starts (else one rank prepares the whole file). Each rank tokenizes its
// records in bounded memory into runs sorted by record_key, under a parts directory beside the
// output; rank 0 merges the runs in key order and writes the data set block by block. The rows,
// ids (record numbers), splits and split order are a pure function of the file and the options,
// identical for any number of ranks.
//
// A row's place: usable rows sorted by record_key(seed, line of the record); the first
// split_sizes().first are dev, the next .second test, the rest train, each in that order.
std::uint64_t record_key(std::uint64_t seed, long line);
std::pair<std::int64_t, std::int64_t> split_sizes(std::int64_t n, const PrepareOptions& o);

// What one rank's share gave: its records, where its parser stopped, its sorted runs, the distinct
// raw labels it saw (labels from the data), and its report (rows, bad rows, truncated).
struct PreparePart {
  std::int64_t records = 0;
  std::uint64_t stop = 0;
  std::vector<std::string> runs, labels;
  PrepareReport report;
};
std::string to_json(const PreparePart& p);
PreparePart prepare_part_from_json(const std::string& s);

// Tokenizes the records of `range` (a share of o.input) into sorted runs under `dir`, named by
// `part`. Throws DataError "file:line: reason" on its first bad row unless skip_bad_rows.
PreparePart prepare_part(const PrepareOptions& o, const TableRange& range, const std::string& dir, int part);
// Merges the parts' runs (parts in file order) into the data set at `out`, block by block;
// returns its content hash and fills `report` (counts summed, split sizes).
std::string merge_parts(const PrepareOptions& o, const std::vector<PreparePart>& parts, const std::string& out,
                        PrepareReport* report);

// Feature vectors from a CSV of numbers (no header; a first row that is not all numbers is taken
// as one) or an HDF5 file with "features" [n, d] and "labels" [n] (integers). Labels become
// classes in sorted order. Errors name file, line and column.
Dataset prepare_features(const PrepareOptions& o, PrepareReport* report = nullptr);

}  // namespace distill
