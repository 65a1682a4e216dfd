// The dataset.h5 format (DESIGN.md): one group per split ("train", "dev", "test"), each with
// input_ids, attention_mask, token_type_ids ([n, seq] int32), labels ([n] int64) and
// example_id ([n] int64); root attributes schema_version, vocab_size, vocab_hash, max_length,
// label_names (JSON list) and content_hash (over every split's arrays, computed once by prepare).
// Unlabeled rows (Note [unlabeled rows]) hold label kIgnoreLabel; each split group records how many
// rows carry a label (attribute `labeled`; absent = all).
// Every array is chunked by kDatasetChunkRows rows with Fletcher32 checksums; each split group
// carries max_input_id and max_token_type. read_dataset leaves the rows on disk: a split's rows are
// read a chunk-sized block at a time when asked for (data/split_file.h).
// Two further tasks share the format (root attribute `task`, absent = "sequence"):
//   "features": each split holds features ([n, dim] float32), labels and example_id (no tokens);
//   "mlm": token arrays plus mlm_labels ([n, seq] int32: the original id at masked positions,
//          -100 elsewhere); labels are 0 and label_names empty.
// Note [regression]: a sequence or features data set may hold a regression task (root attribute
// `regression` = 1, absent = 0): one output, label_names the one name of the target, and each split
// a further array scores ([n] float32), the target of each row. `labels` then marks the rows with a
// target (0) and without (kIgnoreLabel; their score is NaN), so everything that counts or skips
// unlabeled rows works unchanged. The hard loss is the squared error against the score, and eval
// reports MSE, Pearson and Spearman (train/metrics.h).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace distill {

constexpr std::int64_t kDatasetSchemaVersion = 2;  // 2: chunked rows, per-split maxima, streamed content hash
// A regression data set (Note [regression]) is written as version 3, so that builds that predate
// scores refuse it instead of reading it as a one-class classification; classification stays 2.
constexpr std::int64_t kRegressionSchemaVersion = 3;
constexpr std::int64_t kDatasetChunkRows = 1024;   // rows per HDF5 chunk: the unit of reads and shuffles
// Files up to this size are checked whole when opened (content hash recomputed, example ids
// unique); larger ones are checked block by block as they are read (Note [lazy rows]).
constexpr std::uint64_t kFullCheckBytes = std::uint64_t{256} << 20;

class SplitFile;

// mlm_labels at positions not predicted, and the label of an unlabeled row.
//
// Note [unlabeled rows]: a transfer set may hold inputs without labels (prepare --unlabeled, augmented
// copies, mixes). Such a row's label is kIgnoreLabel; the data set keeps its label_names (the classes the
// teacher's outputs mean). Accuracy counts labeled rows only; the hard-label loss sums over the labeled
// rows of a batch and divides by all its rows (kd/loss.h hard_ce). Training a split with no labeled
// row needs distill.alpha = 0 and a teacher.
constexpr std::int32_t kIgnoreLabel = -100;

struct DataSplit {
  std::int64_t n = 0, seq = 0;
  std::vector<std::int32_t> input_ids, attention_mask, token_type_ids;  // [n * seq]
  std::vector<std::int64_t> labels, example_id;                         // [n]
  std::int64_t dim = 0;                                                 // features per example ("features" task)
  std::vector<float> features;                                          // [n * dim]
  std::vector<std::int32_t> mlm_labels;                                 // [n * seq] ("mlm" task)
  std::vector<float> scores;  // [n] regression targets, NaN where unlabeled (Note [regression])
  // Set when the rows stay on disk (read_dataset): the arrays above are empty.
  std::shared_ptr<SplitFile> file;
  // The largest token id and token type of the split as prepare recorded them; -1 = not known.
  std::int64_t max_input_id = -1, max_token_type = -1;
  // Rows with a label as the file records them; -1 = not recorded (every row, or count `labels`).
  std::int64_t labeled = -1;
  // Rows that carry a label (the others hold kIgnoreLabel).
  std::int64_t labeled_rows() const;

  // Rows `rows` (in this order, repeats allowed) as an in-memory split, read from disk when the
  // split lives there. Throws DataError naming the file, split and rows on a bad read.
  DataSplit select(const std::vector<std::int64_t>& rows) const;
  // Every row in memory (small splits and tests).
  DataSplit all() const;
  // Consecutive rows that are read together: the file's chunk rows, kDatasetChunkRows in memory.
  std::int64_t block_rows() const;
  // Calls fn(block, first_row) for consecutive blocks covering the split, in order (bounded memory).
  void scan(const std::function<void(const DataSplit& block, std::int64_t first_row)>& fn) const;
};

struct Dataset {
  std::string path;
  std::string task = "sequence";  // sequence | features | mlm
  bool regression = false;        // one real-valued target per row (Note [regression])
  std::int64_t vocab_size = 0;
  std::int64_t max_length = 0;
  std::string vocab_hash;
  std::vector<std::string> label_names;
  std::string content_hash;
  std::map<std::string, DataSplit> splits;

  std::int64_t num_labels() const { return static_cast<std::int64_t>(label_names.size()); }
  // The named split; throws DataError naming the file and the splits it has.
  const DataSplit& split(const std::string& name) const;
};

// Streams the content hash: each array of each split is hashed on its own as its rows arrive
// (so rows can be appended block by block), and the digests are combined in split-name order
// with the shapes, task and label names. An array's digest is FNV-1a over its 64-bit words as
// stored in memory (little-endian on the supported hosts; a last partial word zero-padded), eight
// times faster than byte-wise FNV-1a.
class ContentHasher {
 public:
  // A regression data set's scores are hashed too (Note [regression]); classification hashes are unchanged.
  explicit ContentHasher(std::string task, bool regression = false)
      : task_(std::move(task)), regression_(regression) {}
  // Rows appended to split `name` (an empty block registers an empty split).
  void add(const std::string& name, const DataSplit& rows);
  std::string hex(const std::vector<std::string>& label_names) const;

 private:
  struct Split;
  std::string task_;
  bool regression_;
  std::map<std::string, std::shared_ptr<Split>> splits_;
};

// The content hash of an in-memory data set (ContentHasher over every split).
std::string dataset_content_hash(const Dataset& d);
// Checks rows [first_row, first_row + rows.n) of split `name` of `d`: shapes, value ranges, labels,
// masks (each row attends to a token), finite features; DataError names the file, split and example.
void check_split_rows(const Dataset& d, const std::string& name, const DataSplit& rows, std::int64_t first_row = 0);
// DataError naming the file, id and splits unless the example ids (given by split) are unique;
// sorts each list.
void check_unique_example_ids(const std::string& path, std::map<std::string, std::vector<std::int64_t>>& ids);
// Checks shapes and value ranges, computes content_hash and writes atomically to `path`
// (DatasetWriter); returns the content hash.
std::string write_dataset(const std::string& path, const Dataset& d);
// Opens a data set: schema version, attributes, shapes and element types (before reading). Rows
// stay on disk. Files up to `full_check_bytes` are then checked whole (check_dataset_content).
// Errors name the file.
Dataset read_dataset(const std::string& path, std::uint64_t full_check_bytes = kFullCheckBytes);
// Reads every row once in blocks: value ranges, masks, unique example ids, and the content hash
// against the stored attribute. DataError names the file, split and rows.
void check_dataset_content(const Dataset& d);

// Checks that split `split` of `d` fits a token model: token ids below `vocab_size`, token types
// below `type_vocab`, rows of at most `max_positions` tokens. Throws DataError naming the file,
// split, example and the value against the limit; `model` names the model. No-op for features.
void check_fits_model(const Dataset& d, const std::string& split, std::int64_t vocab_size, std::int64_t type_vocab,
                      std::int64_t max_positions, const std::string& model);

}  // namespace distill
