#include "distill/store/reader.h"

#include <algorithm>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <thread>

#include "distill/store/shard.h"
#include "distill/store/verify.h"
#include "distill/util/error.h"

namespace distill {

StoreReader::StoreReader(const std::string& dir, const StoreMeta& expect, bool verify) : dir_(dir) {
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
  const bool topk = meta.targets == "mlm_topk";
  if (!topk) logits_.resize(static_cast<std::size_t>(meta.num_examples * meta.num_labels));
  if (topk) token_offsets_.assign(1, 0);
  StoreMeta want = meta;
  for (const auto& e : shards) {
    const auto path = shard_path(dir, e);
    DISTILL_CHECK(std::filesystem::exists(path), StoreError, "store shard ", e.file, " listed in ", dir,
                  "/manifest.json is missing; rerun 'distill precompute'");
    const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
    DISTILL_CHECK(bytes == e.bytes, StoreError, "store shard ", e.file, " is ", bytes, " bytes, manifest.json says ",
                  e.bytes, " (truncated or replaced); delete it and rerun 'distill precompute'");
    if (verify) verify_shard_digest(dir, e);
    auto s = read_shard(path, want, e.range);
    if (topk) {
      // Shards come in range order, so offsets continue from the previous shard's last.
      const auto base = token_offsets_.back();
      for (std::size_t i = 1; i < s.row_offsets.size(); ++i) token_offsets_.push_back(base + s.row_offsets[i]);
      topk_values_.insert(topk_values_.end(), s.topk_values.begin(), s.topk_values.end());
      topk_indices_.insert(topk_indices_.end(), s.topk_indices.begin(), s.topk_indices.end());
      lse_.insert(lse_.end(), s.lse.begin(), s.lse.end());
    } else {
      std::memcpy(&logits_[e.range.begin * meta.num_labels], s.logits.data(), s.logits.size() * sizeof(float));
    }
  }
  manifest_.shards = shards;
  open_.resize(shards.size());
}

StoreReader::StoreReader(const std::string& dir, const StoreMeta& expect, Streaming) : dir_(dir) {
  DISTILL_CHECK(expect.targets == "logits" && !expect.has_layers(), StoreError, "streaming reads logits stores only");
  manifest_.meta = expect;
  ranges_ = shard_ranges(expect.num_examples, expect.shard_size);
  logits_.assign(static_cast<std::size_t>(expect.num_examples * expect.num_labels), 0.0f);
  loaded_ = 0;
}

double StoreReader::wait_for_shards(std::int64_t count, double timeout_s) {
  using clock = std::chrono::steady_clock;
  count = std::min<std::int64_t>(count, shard_count());
  const auto start = clock::now();
  auto progress = start;
  double sleep_s = 0.005;
  std::string last_error;
  while (loaded_ < count) {
    const auto& r = ranges_[loaded_];
    const auto path = (std::filesystem::path(dir_) / shard_name(r)).string();
    bool ok = false;
    if (std::filesystem::exists(path)) {  // a final name means a complete shard (Note [shard commit])
      try {
        auto s = read_shard(path, manifest_.meta, r);
        std::memcpy(&logits_[r.begin * manifest_.meta.num_labels], s.logits.data(), s.logits.size() * sizeof(float));
        manifest_.shards.push_back({shard_name(r), r, static_cast<std::int64_t>(std::filesystem::file_size(path)), ""});
        open_.resize(manifest_.shards.size());
        ++loaded_;
        ok = true;
        progress = clock::now();
        sleep_s = 0.005;
      } catch (const StoreError& e) {
        last_error = e.what();  // stale or being replaced: the teachers redo it
      }
    }
    if (ok) continue;
    DISTILL_CHECK(std::chrono::duration<double>(clock::now() - progress).count() < timeout_s, StoreError,
                  "streaming: no new shard for ", timeout_s, " s while waiting for ", shard_name(r), " in ", dir_, " (",
                  loaded_, " of ", shard_count(), " shards committed); are the teacher ranks alive?",
                  last_error.empty() ? "" : " Last read error: " + last_error);
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
    sleep_s = std::min(0.2, sleep_s * 2);
  }
  return std::chrono::duration<double>(clock::now() - start).count();
}

std::pair<std::int64_t, std::int64_t> StoreReader::token_rows(std::int64_t i) const {
  DISTILL_CHECK(i >= 0 && i + 1 < static_cast<std::int64_t>(token_offsets_.size()), StoreError, "store ", dir_,
                ": example ", i, " has no top-k targets (targets '", manifest_.meta.targets, "')");
  return {token_offsets_[i], token_offsets_[i + 1]};
}

void StoreReader::read_layer(const std::string& group, long layer, const std::vector<long>& stored, std::int64_t i,
                             float* out) const {
  DISTILL_CHECK(std::find(stored.begin(), stored.end(), layer) != stored.end(), StoreError, "store ", dir_,
                " holds no ", group, " of teacher layer ", layer);
  // Shards are sorted and contiguous: find the one holding row i.
  const auto& sh = manifest_.shards;
  auto it =
      std::upper_bound(sh.begin(), sh.end(), i, [](std::int64_t v, const ShardEntry& e) { return v < e.range.end; });
  DISTILL_CHECK(it != sh.end() && i >= it->range.begin, StoreError, "store ", dir_, ": row ", i, " out of range");
  const auto k = static_cast<std::size_t>(it - sh.begin());
  if (open_[k].id() < 0) open_[k] = h5::File::open(shard_path(dir_, *it));
  const auto local = static_cast<hsize_t>(i - it->range.begin);
  open_[k].read_rows("/" + group + "/" + std::to_string(layer), h5::Type::kFloat32, local, local + 1, out);
}

void StoreReader::read_hidden(long layer, std::int64_t i, float* out) const {
  read_layer("hidden", layer, manifest_.meta.hidden_layers, i, out);
}

void StoreReader::read_attention(long layer, std::int64_t i, float* out) const {
  read_layer("attention", layer, manifest_.meta.attention_layers, i, out);
}

const float* StoreReader::row(std::int64_t i) const {
  DISTILL_CHECK(i >= 0 && i < manifest_.meta.num_examples, StoreError, "store ", dir_, ": row ", i,
                " out of range [0, ", manifest_.meta.num_examples, ")");
  DISTILL_CHECK(loaded_ < 0 || loaded_ == shard_count() || i < ranges_[loaded_].begin, StoreError, "store ", dir_,
                ": row ", i, " is in a shard not loaded yet (streaming)");
  return &logits_[i * manifest_.meta.num_labels];
}

std::int64_t StoreReader::total_bytes() const {
  std::int64_t n = 0;
  for (const auto& e : manifest_.shards) n += e.bytes;
  return n;
}

}  // namespace distill
