// The dataset.h5 format (DESIGN.md): one group per split ("train", "dev", "test"), each with
// input_ids, attention_mask, token_type_ids ([n, seq] int32), labels ([n] int64) and
// example_id ([n] int64); root attributes schema_version, vocab_size, vocab_hash, max_length,
// label_names (JSON list) and content_hash (over every split's arrays).
// Two further tasks share the format (root attribute `task`, absent = "sequence"):
//   "features": each split holds features ([n, dim] float32), labels and example_id (no tokens);
//   "mlm": token arrays plus mlm_labels ([n, seq] int32: the original id at masked positions,
//          -100 elsewhere); labels are 0 and label_names empty.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace distill {

constexpr std::int64_t kDatasetSchemaVersion = 1;

constexpr std::int32_t kIgnoreLabel = -100;  // mlm_labels at positions not predicted

struct DataSplit {
  std::int64_t n = 0, seq = 0;
  std::vector<std::int32_t> input_ids, attention_mask, token_type_ids;  // [n * seq]
  std::vector<std::int64_t> labels, example_id;                         // [n]
  std::int64_t dim = 0;                                                 // features per example ("features" task)
  std::vector<float> features;                                          // [n * dim]
  std::vector<std::int32_t> mlm_labels;                                 // [n * seq] ("mlm" task)
};

struct Dataset {
  std::string path;
  std::string task = "sequence";  // sequence | features | mlm
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

// Hash over every split's arrays in name order.
std::string dataset_content_hash(const Dataset& d);
// Checks shapes and value ranges, computes content_hash and writes atomically to `path`.
void write_dataset(const std::string& path, Dataset d);
// Reads and checks schema version, shapes (before reading), element types, value ranges, masks
// (each row attends to a token), unique example ids and the content hash; errors name the file.
Dataset read_dataset(const std::string& path);

// Checks that split `split` of `d` fits a token model: token ids below `vocab_size`, token types
// below `type_vocab`, rows of at most `max_positions` tokens. Throws DataError naming the file,
// split, example and the value against the limit; `model` names the model. No-op for features.
void check_fits_model(const Dataset& d, const std::string& split, std::int64_t vocab_size, std::int64_t type_vocab,
                      std::int64_t max_positions, const std::string& model);

}  // namespace distill
