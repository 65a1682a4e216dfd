// One shard file: datasets "logits" ([count, num_labels], float16 or float32) and "example_id"
// ([count] int64), chunked by rows with Fletcher32; the StoreMeta and the range as attributes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "distill/store/schema.h"

namespace distill {

// Writes and commits a shard (Note [shard commit]). `logits` holds count * num_labels elements
// of meta.dtype (raw binary16 bits for float16). Returns the final path.
std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r,
                        const void* logits, const std::vector<std::int64_t>& example_ids, int rank);

struct ShardData {
  StoreMeta meta;
  ShardRange range;
  std::vector<float> logits;  // [count * num_labels], converted to float32
};

// Reads a shard and checks its attributes against `expect` (schema, teacher, data set, split,
// labels, dtype) and its range against its name; errors name the file and the mismatch.
ShardData read_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r);

}  // namespace distill
