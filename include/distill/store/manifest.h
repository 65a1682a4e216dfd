// manifest.json: the store's StoreMeta and its committed shards with range, bytes and digest.
#pragma once
#include <string>
#include <vector>

#include "distill/store/schema.h"

namespace distill {

struct ShardEntry {
  std::string file;
  ShardRange range;
  std::int64_t bytes = 0;
  std::string digest;  // util/hash file_digest of the shard
};

struct Manifest {
  StoreMeta meta;
  std::vector<ShardEntry> shards;  // sorted by range
};

std::string manifest_path(const std::string& dir);
void write_manifest(const std::string& dir, const Manifest& m);  // atomic
// Throws StoreError naming the file when missing or malformed.
Manifest read_manifest(const std::string& dir);

// Checks that `have` (from a manifest or a shard) matches what the run expects; `where` names the
// file. Each mismatch names the field and both values, with a hint.
void check_store_meta(const StoreMeta& have, const StoreMeta& expect, const std::string& where);

}  // namespace distill
