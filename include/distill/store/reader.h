// Reads a committed store for training: checks the manifest against the run, that every shard
// listed exists with its recorded size and that the shards cover the split exactly once. Targets
// (logits, top-k, hidden states, attention maps) are read per example from the shard files,
// converted to float32, so memory stays bounded whatever the store's size: at most 64 shard files
// are open at a time (least recently used closed first). A shard's attributes and dataset shapes
// are checked when the reader opens it.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <vector>

#include "distill/io/h5.h"
#include "distill/store/manifest.h"

namespace distill {

class StoreReader {
 public:
  // At most this many shard files are open at a time.
  static constexpr std::size_t kMaxOpenShards = 64;

  // `expect` holds the run's teacher fingerprint ("" = accept the store's), dataset hash, split,
  // num_labels and num_examples. Throws StoreError naming the store, shard and mismatch. With
  // `verify` (store.verify), each shard's file digest is checked against the manifest's here
  // (Note [verified stores]), which reads every byte of the store once. Reads no targets; a shard
  // whose attributes or shapes do not match is refused when first read (check_shard).
  StoreReader(const std::string& dir, const StoreMeta& expect, bool verify = true);
  // Streaming: the store is still being written. `expect` must be complete (what precompute
  // writes: teacher, data set, split, targets "logits", dtype, labels, examples, shard_size); no
  // manifest is needed and shards become readable by wait_for_shards as they are committed.
  struct Streaming {};
  StoreReader(const std::string& dir, const StoreMeta& expect, Streaming);
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Blocks, sleeping, until shards [0, count) are committed and pass check_shard. Throws
  // StoreError naming the shard after `timeout_s` seconds without a new commit. Returns the
  // seconds spent waiting.
  double wait_for_shards(std::int64_t count, double timeout_s);
  std::int64_t shards_loaded() const;
  std::int64_t shard_count() const { return static_cast<std::int64_t>(ranges_.size()); }
  const Manifest& manifest() const { return manifest_; }
  std::int64_t num_labels() const { return manifest_.meta.num_labels; }
  std::int64_t total_bytes() const;

  // The read_* calls below may be made from several threads at once. Errors are StoreError naming
  // the store, the shard file and the example row (a corrupt chunk included); streaming, a row of
  // a shard wait_for_shards has not reached yet is an error too.

  // Logits of example row `i` of the split: num_labels floats into `out`.
  void read_logits(std::int64_t i, float* out) const;
  // mlm_topk: appends example i's masked tokens' top-k values (k floats each), vocabulary ids (k
  // each) and lse (one each), in position order; returns the number of tokens appended (may be
  // 0). On error the vectors are left as they were.
  std::int64_t read_topk(std::int64_t i, std::vector<float>& values, std::vector<std::int64_t>& indices,
                         std::vector<float>& lse) const;
  // Stored teacher layers of example row i, as float32: hidden [seq * hidden_size], attention
  // [heads * seq * seq]. StoreError when the layer is not stored.
  void read_hidden(long layer, std::int64_t i, float* out) const;
  void read_attention(long layer, std::int64_t i, float* out) const;
  // qkv_layers: `part` is "query", "key" or "value", [seq * hidden_size].
  void read_qkv(const std::string& part, long layer, std::int64_t i, float* out) const;
  // Example rows read from shard files so far (one per successful read_* call).
  std::int64_t rows_read() const;

 private:
  struct OpenShard {
    std::size_t shard;  // index into manifest_.shards
    h5::File file;
    std::vector<std::int64_t> row_offsets;  // mlm_topk
  };
  std::string dir_;
  Manifest manifest_;                  // shards sorted by range; streaming: those loaded
  std::vector<ShardRange> ranges_;     // every shard of the split, sorted
  mutable std::mutex mu_;              // guards everything below and manifest_.shards while streaming
  std::int64_t loaded_ = -1;           // streaming: shards [0, loaded_) are readable; -1 = not streaming
  mutable std::list<OpenShard> open_;  // most recently used first, at most kMaxOpenShards
  mutable std::int64_t rows_read_ = 0;

  // With mu_ held: the open shard holding row i (opened and checked if need be, moved to the
  // front) and i's row within it.
  OpenShard& shard_of(std::int64_t i, hsize_t& local) const;
  void keep_open(OpenShard s) const;
  // Throws StoreError naming the store, shard and row i for `cause`, an error reading `what`.
  [[noreturn]] void read_failed(const OpenShard& s, std::int64_t i, const std::string& what,
                                const std::string& cause) const;
  void read_layer(const std::string& group, long layer, const std::vector<long>& stored, std::int64_t i,
                  float* out) const;
};

}  // namespace distill
