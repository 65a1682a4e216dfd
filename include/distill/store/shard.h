// One shard file: "example_id" ([count] int64) plus, by meta.targets,
//   logits:   "logits" [count, num_labels] (float16 or float32), and for each stored teacher layer l
//             "hidden/<l>" [count, seq, hidden_size] and "attention/<l>" [count, heads, seq, seq],
//             and "query/<l>", "key/<l>", "value/<l>" [count, seq, hidden_size] for qkv_layers
//             (float16, one chunk per example, so rows are read lazily);
//   mlm_topk: "row_offsets" [count + 1] int64 (example i's masked tokens are rows
//             offsets[i]..offsets[i+1], in position order), "topk_values" [tokens, k] (dtype),
//             "topk_indices" [tokens, k] (uint16 or int32) and "lse" [tokens] float32.
// All datasets are chunked with Fletcher32; the StoreMeta and the range are attributes. Shards use
// the checksummed HDF5 format (h5::File::Format::kChecksummed), so their metadata (chunk indexes,
// object headers) carry checksums too (Note [verified stores] in store/verify.h).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distill/store/schema.h"

namespace distill {

// A dataset to write into a shard: raw elements of `type`, rows chunked by `chunk_rows`.
struct ShardArray {
  std::string name;
  h5::Type type;
  std::vector<hsize_t> shape;
  const void* data;
  hsize_t chunk_rows = 256;
};

// Writes and commits a shard (Note [shard commit]) holding `arrays` and the example ids.
std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r,
                        const std::vector<ShardArray>& arrays, const std::vector<std::int64_t>& example_ids, int rank);
// A logits shard: `logits` holds count * num_labels elements of meta.dtype (binary16 bits for float16).
std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r, const void* logits,
                        const std::vector<std::int64_t>& example_ids, int rank);

struct ShardData {
  StoreMeta meta;
  ShardRange range;
  std::vector<float> logits;  // logits: [count * num_labels], converted to float32
  // mlm_topk
  std::vector<std::int64_t> row_offsets;   // [count + 1]
  std::vector<float> topk_values;          // [tokens * k]
  std::vector<std::int32_t> topk_indices;  // [tokens * k]
  std::vector<float> lse;                  // [tokens]
};

// The StoreMeta and range a shard's attributes say, unchecked; StoreError naming the file when it
// is unreadable or lacks them.
std::pair<StoreMeta, ShardRange> read_shard_meta(const std::string& path);

// An open shard file whose attributes and dataset shapes check_shard() found as expected.
struct CheckedShard {
  h5::File file;
  StoreMeta meta;
  ShardRange range;
  std::vector<std::int64_t> row_offsets;  // mlm_topk: [count + 1], from 0, non-decreasing
};

// Opens a shard and checks its attributes against `expect` (schema, teacher, data set, split,
// labels, dtype, layout), its range against its name and the shapes of its datasets (mlm_topk:
// row_offsets start at 0, never decrease and end at the top-k row count); reads no targets but
// row_offsets. Errors (StoreError) name the file and the mismatch.
CheckedShard check_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r);

// check_shard(), then reads the logits or top-k targets (every chunk, so checksums are checked);
// the layer datasets are checked for shape but not loaded.
ShardData read_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r);

}  // namespace distill
