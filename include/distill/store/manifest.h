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
// Throws StoreError naming the file when missing or malformed, and naming the entry when a shard
// entry's "file" is not the plain name shard_name() gives its range (Note [store paths]).
Manifest read_manifest(const std::string& dir);

// Note [store paths]: a manifest names its shards by plain file name only, the name shard_name()
// gives the entry's range; no directories, "..", absolute paths or other names. The file opened
// must resolve inside the store directory, so a symlink out of it is refused too. A manifest
// therefore cannot make distill read files other than the store's own shards.
//
// The path of entry `e`'s shard in store `dir`; StoreError naming the manifest and the entry when
// the file is a link that leads out of `dir`. The file need not exist.
std::string shard_path(const std::string& dir, const ShardEntry& e);

// Checks that `have` (from a manifest or a shard) matches what the run expects; `where` names the
// file. Each mismatch names the field and both values, with a hint. Empty/zero fields of `expect`
// (teacher, labels, examples, targets, teacher_batch_size, teacher_precision) accept any value; a
// zero teacher_batch_size or empty teacher_precision in `have` (not recorded) is accepted too.
void check_store_meta(const StoreMeta& have, const StoreMeta& expect, const std::string& where);

}  // namespace distill
