#include "distill/store/reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "distill/store/shard.h"
#include "distill/util/error.h"

namespace distill {

StoreReader::StoreReader(const std::string& dir, const StoreMeta& expect) : dir_(dir) {
  manifest_ = read_manifest(dir);
  const auto& meta = manifest_.meta;
  check_store_meta(meta, expect, "store " + dir);
  auto shards = manifest_.shards;
  std::sort(shards.begin(), shards.end(),
            [](const ShardEntry& a, const ShardEntry& b) { return a.range.begin < b.range.begin; });
  std::int64_t covered = 0;
  for (const auto& e : shards) {
    DISTILL_CHECK(e.range.begin == covered, StoreError, "store ", dir, " manifest has no shard for rows [", covered,
                  ", ", e.range.begin, "); rerun 'distill precompute'");
    covered = e.range.end;
  }
  DISTILL_CHECK(covered == meta.num_examples, StoreError, "store ", dir, " covers rows [0, ", covered, ") of ",
                meta.num_examples, "; rerun 'distill precompute'");
  logits_.resize(static_cast<std::size_t>(meta.num_examples * meta.num_labels));
  StoreMeta want = meta;
  for (const auto& e : shards) {
    const auto path = (std::filesystem::path(dir) / e.file).string();
    DISTILL_CHECK(std::filesystem::exists(path), StoreError, "store shard ", e.file, " listed in ", dir,
                  "/manifest.json is missing; rerun 'distill precompute'");
    const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
    DISTILL_CHECK(bytes == e.bytes, StoreError, "store shard ", e.file, " is ", bytes, " bytes, manifest.json says ",
                  e.bytes, " (truncated or replaced); delete it and rerun 'distill precompute'");
    auto s = read_shard(path, want, e.range);
    std::memcpy(&logits_[e.range.begin * meta.num_labels], s.logits.data(), s.logits.size() * sizeof(float));
  }
}

const float* StoreReader::row(std::int64_t i) const {
  DISTILL_CHECK(i >= 0 && i < manifest_.meta.num_examples, StoreError, "store ", dir_, ": row ", i,
                " out of range [0, ", manifest_.meta.num_examples, ")");
  return &logits_[i * manifest_.meta.num_labels];
}

std::int64_t StoreReader::total_bytes() const {
  std::int64_t n = 0;
  for (const auto& e : manifest_.shards) n += e.bytes;
  return n;
}

}  // namespace distill
