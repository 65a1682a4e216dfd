// Reads a committed store for training: checks the manifest against the run, that every shard
// listed exists with its recorded size and that the shards cover the split exactly once, then
// loads the logits (converted to float32) into memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "distill/store/manifest.h"

namespace distill {

class StoreReader {
 public:
  // `expect` holds the run's teacher fingerprint ("" = accept the store's), dataset hash, split,
  // num_labels and num_examples. Throws StoreError naming the store, shard and mismatch.
  StoreReader(const std::string& dir, const StoreMeta& expect);
  const Manifest& manifest() const { return manifest_; }
  std::int64_t num_labels() const { return manifest_.meta.num_labels; }
  // Logits of example row `i` of the split: num_labels floats.
  const float* row(std::int64_t i) const;
  std::int64_t total_bytes() const;

 private:
  std::string dir_;
  Manifest manifest_;
  std::vector<float> logits_;  // [num_examples * num_labels]
};

}  // namespace distill
