// One shard's targets as a producer hands them to the store (float32 and int64 host buffers), and
// the same targets in the store's on-disk dtypes and chunking, ready for write_shard().
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distill/store/schema.h"
#include "distill/store/shard.h"

namespace distill {

// The targets of the rows of one shard, in row order. Which fields are used follows
// StoreMeta::targets; shapes follow the StoreMeta (count = rows of the shard).
struct ShardTargets {
  std::vector<std::int64_t> example_ids;  // [count]
  // targets "logits"
  std::vector<float> logits;                     // [count, num_labels]
  std::map<long, std::vector<float>> hidden;     // by teacher layer: [count, seq, hidden_size]
  std::map<long, std::vector<float>> attention;  // by teacher layer: [count, heads, seq, seq]
  std::map<long, std::vector<float>> query, key, value;  // by teacher layer: [count, seq, hidden_size]
  // targets "mlm_topk": the masked tokens of every example, in example and position order
  std::vector<std::int64_t> tokens;        // [count] masked tokens of each example
  std::vector<float> topk_values;          // [tokens, topk]
  std::vector<std::int64_t> topk_indices;  // [tokens, topk] vocabulary ids
  std::vector<float> lse;                  // [tokens] logsumexp(z / temperature) of the full row
};

// A shard's arrays in the store's dtypes. Owns the buffers its arrays point into; movable.
struct EncodedShard {
  ShardRange range;
  std::vector<ShardArray> arrays;  // in the order they are written
  std::vector<std::int64_t> example_ids;
  std::vector<std::shared_ptr<const void>> buffers;
  // "" when every float target is finite in its stored dtype. Else what is not, as in
  // "non-finite logits (NaN or infinity) in 2 examples of shard shard-000000000-000000009.h5
  // (rows [0, 10)), first at example ids 3, 7"; the arrays are then incomplete.
  std::string nonfinite;
};

// Converts `t` to the dtypes and chunking of `meta` (Note [store dtypes]). Throws StoreError when
// a buffer does not have the size `meta` and `r` give it.
EncodedShard encode_shard(const StoreMeta& meta, const ShardRange& r, ShardTargets t);

// Note [store dtypes]: logits and top-k values are stored in meta.dtype (float16 or float32),
// rounded to nearest even; hidden states and attention maps in float16, one chunk per example;
// top-k indices as uint16 (the low 16 bits of ids below 65536) or int32 (meta.index_dtype); lse
// in float32; row_offsets and example ids in int64. Chunks: 256 rows for logits, row_offsets and
// example ids, 1024 for top-k rows and lse. A target is refused, before anything is written, when
// it is not finite in its stored dtype (a float16 overflow included).

}  // namespace distill
