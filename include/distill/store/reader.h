// Reads a committed store for training: checks the manifest against the run, that every shard
// listed exists with its recorded size and that the shards cover the split exactly once, then
// loads the logits or top-k targets (converted to float32) into memory. Hidden states and
// attention maps stay on disk and are read by example when asked.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distill/io/h5.h"
#include "distill/store/manifest.h"

namespace distill {

class StoreReader {
 public:
  // `expect` holds the run's teacher fingerprint ("" = accept the store's), dataset hash, split,
  // num_labels and num_examples. Throws StoreError naming the store, shard and mismatch. With
  // `verify` (store.verify), each shard's file digest is checked against the manifest's when the
  // shard is opened (Note [verified stores]), which reads every byte of the store once more.
  StoreReader(const std::string& dir, const StoreMeta& expect, bool verify = true);
  // Streaming: the store is still being written. `expect` must be complete (what precompute
  // writes: teacher, data set, split, targets "logits", dtype, labels, examples, shard_size); no
  // manifest is needed and shards are loaded by wait_for_shards as they are committed.
  struct Streaming {};
  StoreReader(const std::string& dir, const StoreMeta& expect, Streaming);
  // Blocks, sleeping, until shards [0, count) are loaded. Throws StoreError naming the shard
  // after `timeout_s` seconds without a new commit. Returns the seconds spent waiting.
  double wait_for_shards(std::int64_t count, double timeout_s);
  std::int64_t shards_loaded() const { return loaded_; }
  std::int64_t shard_count() const { return static_cast<std::int64_t>(ranges_.size()); }
  const Manifest& manifest() const { return manifest_; }
  std::int64_t num_labels() const { return manifest_.meta.num_labels; }
  // Logits of example row `i` of the split: num_labels floats.
  const float* row(std::int64_t i) const;
  std::int64_t total_bytes() const;

  // mlm_topk: example i's masked tokens are rows [begin, end) of the arrays below.
  std::pair<std::int64_t, std::int64_t> token_rows(std::int64_t i) const;
  const float* topk_values(std::int64_t row) const { return &topk_values_[row * manifest_.meta.topk]; }
  const std::int32_t* topk_indices(std::int64_t row) const { return &topk_indices_[row * manifest_.meta.topk]; }
  float lse(std::int64_t row) const { return lse_[row]; }

  // Stored teacher layers of example row i, as float32: hidden [seq * hidden_size], attention
  // [heads * seq * seq]. StoreError when the layer is not stored.
  void read_hidden(long layer, std::int64_t i, float* out) const;
  void read_attention(long layer, std::int64_t i, float* out) const;

 private:
  std::string dir_;
  Manifest manifest_;
  std::vector<float> logits_;                // [num_examples * num_labels]
  std::vector<std::int64_t> token_offsets_;  // [num_examples + 1], mlm_topk
  std::vector<float> topk_values_, lse_;
  std::vector<std::int32_t> topk_indices_;
  std::vector<ShardRange> ranges_;      // streaming: every shard of the split
  std::int64_t loaded_ = -1;            // streaming: shards [0, loaded_) are in memory; -1 = not streaming
  mutable std::vector<h5::File> open_;  // shard files opened for layer reads, by shard
  void read_layer(const std::string& group, long layer, const std::vector<long>& stored, std::int64_t i,
                  float* out) const;
};

}  // namespace distill
