// Store verification: shard digests against manifest.json, and the coverage a store directory
// actually has (what `distill inspect` reports).
//
// Note [verified stores]: three checks guard a store's bytes.
//  - Fletcher32 on every chunk: damaged target data is a read error.
//  - HDF5 metadata checksums (shards are written in the checksummed format): a damaged chunk index
//    or object header is a read error, never rows read back as fill values.
//  - manifest.json's digest of each whole shard file: checked by StoreReader when it opens a shard
//    (unless store.verify is false), by `distill inspect --verify`, and by precompute, which redoes
//    a committed shard whose digest differs from the manifest's.
// An entry without a digest (written by streaming or by hand) is not checked.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "distill/store/manifest.h"

namespace distill {

// Throws StoreError naming the shard file, the manifest's digest and the file's, with a hint to
// rerun precompute for the shard's rows. Reads the whole file; does nothing when e.digest is "".
void verify_shard_digest(const std::string& dir, const ShardEntry& e);

// What a store directory holds, found by reading it rather than trusting the manifest's header.
struct StoreHealth {
  bool has_manifest = false;
  Manifest manifest;                  // as read; without one, meta comes from the first readable shard
  std::int64_t examples = 0;          // rows of the split the store is for
  std::int64_t covered = 0;           // rows in usable shards: listed, present, right size, readable
                                      // (and matching their digest when verified)
  std::vector<ShardRange> gaps;       // rows of [0, examples) not covered, merged
  std::vector<std::string> missing;   // listed in the manifest, absent
  std::vector<std::string> bad;       // "file: reason" for listed shards that are not usable
  std::vector<std::string> unlisted;  // shard files on disk the manifest does not list
  std::vector<std::string> partial;   // uncommitted "*.partial-<rank>" files
  std::vector<std::string> problems;  // store-wide: no or malformed manifest, overlapping entries
  bool verified = false;              // digests were checked
  std::int64_t digests_checked = 0;   // entries with a digest that matched
  std::int64_t digests_absent = 0;    // entries without a digest (not checkable)

  // Every row covered by usable shards of a readable manifest, nothing listed missing or bad.
  bool healthy() const;
};

// Reads every shard the store lists (and, with `verify`, digests it). Never throws for a broken
// store: what is wrong goes into the result. Throws StoreError only when `dir` is not a directory.
StoreHealth check_store(const std::string& dir, bool verify);

}  // namespace distill
