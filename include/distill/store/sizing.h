// What a new store holds and how large it gets: the store's choices (dtype, shard size, top-k and
// index type) added to what the teacher and the data say, the top-k defaults, and the size
// estimate that store.max_bytes bounds.
#pragma once
#include <cstdint>

#include "distill/store/schema.h"

namespace distill {

// Bytes one masked token costs in an mlm_topk store: k values (2 or 4 bytes), k indices (2 or 4),
// the lse and its share of row_offsets (4 + 8 / tokens, counted as 4).
std::int64_t topk_bytes_per_token(std::int64_t k, bool half_values, bool short_indices);
// The default k: the largest power of two whose masked token costs at most 300 bytes.
std::int64_t default_topk(bool half_values, bool short_indices);

// Completes `meta`, which holds what the teacher and the data say (fingerprint, data set hash,
// split, targets, num_labels (the vocabulary for mlm_topk), num_examples, teacher_batch_size,
// temperature, layers), with the choices of `o`: dtype and shard_size, and for mlm_topk targets
// k (store.topk, or default_topk()) and the index type (uint16 for vocabularies up to 65536, else
// int32). `masked_tokens`: the split's masked tokens (mlm_topk). With `log` (one rank) prints the
// top-k cost and the size estimate. Throws ConfigError when k exceeds the vocabulary or the
// estimate exceeds o.max_bytes.
StoreMeta plan_store(StoreMeta meta, const StoreOptions& o, std::int64_t masked_tokens, bool log);

}  // namespace distill
