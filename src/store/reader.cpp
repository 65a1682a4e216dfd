#include "distill/store/reader.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

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
  for (const auto& e : shards) {
    const auto path = shard_path(dir, e);
    DISTILL_CHECK(std::filesystem::exists(path), StoreError, "store shard ", e.file, " listed in ", dir,
                  "/manifest.json is missing; rerun 'distill precompute'");
    const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
    DISTILL_CHECK(bytes == e.bytes, StoreError, "store shard ", e.file, " is ", bytes, " bytes, manifest.json says ",
                  e.bytes, " (truncated or replaced); delete it and rerun 'distill precompute'");
    if (verify) verify_shard_digest(dir, e);
    ranges_.push_back(e.range);
  }
  manifest_.shards = shards;
}

StoreReader::StoreReader(const std::string& dir, const StoreMeta& expect, Streaming) : dir_(dir) {
  DISTILL_CHECK(expect.targets == "logits" && !expect.has_layers(), StoreError, "streaming reads logits stores only");
  manifest_.meta = expect;
  ranges_ = shard_ranges(expect.num_examples, expect.shard_size);
  loaded_ = 0;
}

std::int64_t StoreReader::shards_loaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_ < 0 ? shard_count() : loaded_;
}

double StoreReader::wait_for_shards(std::int64_t count, double timeout_s) {
  using clock = std::chrono::steady_clock;
  count = std::min<std::int64_t>(count, shard_count());
  const auto start = clock::now();
  auto progress = start;
  double sleep_s = 0.005;
  std::string last_error;
  for (;;) {
    std::int64_t next = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (loaded_ < 0 || loaded_ >= count) break;  // not streaming: every shard is readable
      next = loaded_;
    }
    const auto& r = ranges_[next];
    const auto path = (std::filesystem::path(dir_) / shard_name(r)).string();
    bool ok = false;
    if (std::filesystem::exists(path)) {  // a final name means a complete shard (Note [shard commit])
      try {
        auto c = check_shard(path, manifest_.meta, r);
        const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
        std::lock_guard<std::mutex> lock(mu_);
        manifest_.shards.push_back({shard_name(r), r, bytes, ""});
        keep_open({static_cast<std::size_t>(next), std::move(c.file), std::move(c.row_offsets)});
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
                  next, " of ", shard_count(), " shards committed); are the teacher ranks alive?",
                  last_error.empty() ? "" : " Last read error: " + last_error);
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
    sleep_s = std::min(0.2, sleep_s * 2);
  }
  return std::chrono::duration<double>(clock::now() - start).count();
}

void StoreReader::keep_open(OpenShard s) const {
  open_.push_front(std::move(s));
  while (open_.size() > kMaxOpenShards) open_.pop_back();
}

StoreReader::OpenShard& StoreReader::shard_of(std::int64_t i, hsize_t& local) const {
  const auto n = manifest_.meta.num_examples;
  DISTILL_CHECK(i >= 0 && i < n, StoreError, "store ", dir_, ": row ", i, " out of range [0, ", n, ")");
  // Shards are sorted and cover [0, n): find the one holding row i.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), i,
                             [](std::int64_t v, const ShardRange& r) { return v < r.end; });
  const auto k = static_cast<std::size_t>(it - ranges_.begin());
  DISTILL_CHECK(loaded_ < 0 || static_cast<std::int64_t>(k) < loaded_, StoreError, "store ", dir_, ": row ", i,
                " is in a shard not loaded yet (streaming)");
  local = static_cast<hsize_t>(i - it->begin);
  for (auto p = open_.begin(); p != open_.end(); ++p)
    if (p->shard == k) {
      open_.splice(open_.begin(), open_, p);
      return open_.front();
    }
  auto c = check_shard(shard_path(dir_, manifest_.shards[k]), manifest_.meta, *it);
  keep_open({k, std::move(c.file), std::move(c.row_offsets)});
  return open_.front();
}

void StoreReader::read_failed(const OpenShard& s, std::int64_t i, const std::string& what,
                              const std::string& cause) const {
  throw StoreError(str("store ", dir_, " shard ", manifest_.shards[s.shard].file, ": cannot read example ", i, " (",
                       what, "): ", cause, "; delete it and rerun 'distill precompute'"));
}

void StoreReader::read_logits(std::int64_t i, float* out) const {
  DISTILL_CHECK(manifest_.meta.targets == "logits", StoreError, "store ", dir_, ": example ", i,
                " has no logits (targets '", manifest_.meta.targets, "')");
  std::lock_guard<std::mutex> lock(mu_);
  hsize_t local = 0;
  auto& s = shard_of(i, local);
  try {
    s.file.read_rows("/logits", h5::Type::kFloat32, local, local + 1, out);
  } catch (const Error& e) {
    read_failed(s, i, str("rows [", local, ", ", local + 1, ") of /logits"), e.what());
  }
  ++rows_read_;
}

std::int64_t StoreReader::read_topk(std::int64_t i, std::vector<float>& values, std::vector<std::int64_t>& indices,
                                    std::vector<float>& lse) const {
  DISTILL_CHECK(manifest_.meta.targets == "mlm_topk", StoreError, "store ", dir_, ": example ", i,
                " has no top-k targets (targets '", manifest_.meta.targets, "')");
  std::lock_guard<std::mutex> lock(mu_);
  hsize_t local = 0;
  auto& s = shard_of(i, local);
  const auto begin = static_cast<hsize_t>(s.row_offsets[local]), end = static_cast<hsize_t>(s.row_offsets[local + 1]);
  const auto tokens = static_cast<std::size_t>(end - begin), k = static_cast<std::size_t>(manifest_.meta.topk);
  if (tokens > 0) {
    const auto v0 = values.size(), i0 = indices.size(), l0 = lse.size();
    auto restore = [&] {
      values.resize(v0);
      indices.resize(i0);
      lse.resize(l0);
    };
    std::string ds;
    try {
      values.resize(v0 + tokens * k);
      indices.resize(i0 + tokens * k);
      lse.resize(l0 + tokens);
      ds = "/topk_values";
      s.file.read_rows(ds, h5::Type::kFloat32, begin, end, values.data() + v0);
      ds = "/topk_indices";
      s.file.read_rows(ds, h5::Type::kInt64, begin, end, indices.data() + i0);
      ds = "/lse";
      s.file.read_rows(ds, h5::Type::kFloat32, begin, end, lse.data() + l0);
    } catch (const Error& e) {
      restore();
      read_failed(s, i, str("rows [", begin, ", ", end, ") of ", ds), e.what());
    } catch (...) {
      restore();
      throw;
    }
  }
  ++rows_read_;
  return static_cast<std::int64_t>(tokens);
}

void StoreReader::read_layer(const std::string& group, long layer, const std::vector<long>& stored, std::int64_t i,
                             float* out) const {
  DISTILL_CHECK(std::find(stored.begin(), stored.end(), layer) != stored.end(), StoreError, "store ", dir_,
                " holds no ", group, " of teacher layer ", layer);
  const auto ds = "/" + group + "/" + std::to_string(layer);
  std::lock_guard<std::mutex> lock(mu_);
  hsize_t local = 0;
  auto& s = shard_of(i, local);
  try {
    s.file.read_rows(ds, h5::Type::kFloat32, local, local + 1, out);
  } catch (const Error& e) {
    read_failed(s, i, str("rows [", local, ", ", local + 1, ") of ", ds), e.what());
  }
  ++rows_read_;
}

void StoreReader::read_hidden(long layer, std::int64_t i, float* out) const {
  read_layer("hidden", layer, manifest_.meta.hidden_layers, i, out);
}

void StoreReader::read_attention(long layer, std::int64_t i, float* out) const {
  read_layer("attention", layer, manifest_.meta.attention_layers, i, out);
}

void StoreReader::read_qkv(const std::string& part, long layer, std::int64_t i, float* out) const {
  DISTILL_CHECK(part == "query" || part == "key" || part == "value", StoreError, "read_qkv: part '", part,
                "', expected query, key or value");
  read_layer(part, layer, manifest_.meta.qkv_layers, i, out);
}

std::int64_t StoreReader::rows_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_read_;
}

std::int64_t StoreReader::total_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t n = 0;
  for (const auto& e : manifest_.shards) n += e.bytes;
  return n;
}

}  // namespace distill
