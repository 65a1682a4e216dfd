// The store writer: which rank writes which shard, the store's setup, skipping committed shards
// and redoing the rest, writing shards off the caller's thread, and the manifest.
//
// A precompute of W ranks: rank 0 runs prepare_store() while the others wait for its verdict;
// then every rank makes a StoreWriter, keeps its committed shards, hands it the targets of the
// others, and the entries of all ranks become manifest.json (written by rank 0).
#pragma once
#include <cstdint>
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "distill/store/encode.h"
#include "distill/store/manifest.h"

namespace distill {

// Rank 0's part before any rank writes: creates `dir`; checks an existing manifest and the
// committed shards against `meta` (StoreError naming the field that differs: teacher, data set,
// split, shard size, dtype, layout, teacher.batch_size, with a hint); deletes partial shards
// (Note [shard commit]).
void prepare_store(const std::string& dir, const StoreMeta& meta);

// The shards rank `rank` of `world` writes: shards rank, rank + world, ... of
// shard_ranges(meta.num_examples, meta.shard_size).
std::vector<ShardRange> rank_shards(const StoreMeta& meta, int rank, int world);

struct StoreWriteStats {
  std::int64_t shards_written = 0, shards_skipped = 0;  // skipped: committed before
  std::int64_t rows_written = 0;
  std::int64_t rows_done = 0;  // of shards written or skipped
  double write_seconds = 0;    // spent writing shards, in the writer thread
  double wait_seconds = 0;     // the caller waited for the writer thread
};

// Writes one rank's shards (rank_shards) of the store in `dir` and collects their manifest
// entries. Shard i is written by a thread of the writer's while the caller computes shard i + 1;
// at most one shard waits to be written. One thread calls the writer; once the constructor has
// returned, only the writer's thread calls HDF5 (the library is not thread safe).
class StoreWriter {
 public:
  // Finds which of this rank's shards are committed (Note [verified stores]): present under the
  // final name, readable with `meta`, and still of the digest the store's manifest lists, when it
  // lists one. The others are redone; a warning "redoing <path>: <why>" names those found broken.
  // prepare_store() must have run.
  StoreWriter(std::string dir, StoreMeta meta, int rank, int world);
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  ~StoreWriter() = default;  // waits for a shard being written

  const StoreMeta& meta() const { return meta_; }
  std::size_t shards() const { return ranges_.size(); }
  const ShardRange& range(std::size_t i) const { return ranges_.at(i); }
  std::string path(std::size_t i) const;  // the final path of shard i

  // True, and shard i joins the manifest as it is, when it is committed; false when it has to
  // be computed and written.
  bool keep_if_committed(std::size_t i);
  // Shard i's targets in the store's dtypes (encode_shard, Note [store dtypes]).
  EncodedShard encode(std::size_t i, ShardTargets t) const;
  // Waits for the shard written before, then starts committing `s` (Note [shard commit]), which
  // must be complete (s.nonfinite empty). Errors of the write come from the next write() or wait().
  void write(EncodedShard s);
  // Returns when every shard given to write() is committed.
  void wait();
  const StoreWriteStats& stats() const { return stats_; }

  // This rank's manifest entries, serialised (for an allgather); wait() first.
  std::string entries() const;
  // The manifest of the entries of every rank (each rank's entries()), sorted by range; rank 0
  // writes it to manifest.json (atomic).
  Manifest commit_manifest(const std::vector<std::string>& entries_of_ranks) const;

 private:
  std::string dir_;
  StoreMeta meta_;
  int rank_;
  std::vector<ShardRange> ranges_;
  std::vector<char> committed_;       // by shard of this rank
  std::vector<std::string> digests_;  // of the committed shards, when the manifest had them
  std::vector<ShardEntry> entries_;
  StoreWriteStats stats_;
  std::int64_t writing_rows_ = 0;
  // The entry of the shard being written and the seconds it took; declared last, so that it is
  // destroyed (waited for) first.
  std::future<std::pair<ShardEntry, double>> writing_;
};

}  // namespace distill
