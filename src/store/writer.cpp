#include "distill/store/writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "distill/store/shard.h"
#include "distill/store/verify.h"
#include "distill/util/error.h"
#include "distill/util/hash.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Checks an existing manifest.json of `dir` against `meta`: same teacher, data, split, shard size,
// dtype and layout.
void check_manifest(const std::string& dir, const StoreMeta& meta) {
  auto m = read_manifest(dir);
  check_store_meta(m.meta, meta, "store " + dir);
  DISTILL_CHECK(m.meta.shard_size == meta.shard_size && m.meta.dtype == meta.dtype, StoreError, "store ", dir,
                " has shard_size ", m.meta.shard_size, " and dtype ", m.meta.dtype, ", the config asks for ",
                meta.shard_size, " and ", meta.dtype, "; use a new store.path");
  DISTILL_CHECK(layout_json(m.meta) == layout_json(meta), StoreError, "store ", dir, " has layout ",
                layout_json(m.meta), ", the config asks for ", layout_json(meta), "; use a new store.path");
}

// Refuses committed shards in `dir` that hold this run's targets (teacher, data, split, layout) but
// were computed with another teacher.batch_size (Note [verified stores]: one store, one batch
// size). Returns how many such shards do not record a batch size (written by an older distill).
std::int64_t check_shard_batch_sizes(const std::string& dir, const StoreMeta& meta) {
  StoreMeta any = meta;
  any.teacher_batch_size = 0;
  any.teacher_precision.clear();
  std::int64_t unrecorded = 0;
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    ShardRange r;
    if (!parse_shard_name(name, &r)) continue;
    StoreMeta have;
    try {
      have = read_shard_meta(f.path().string()).first;
      check_store_meta(have, any, name);
      if (layout_json(have) != layout_json(meta) || have.dtype != meta.dtype || have.shard_size != meta.shard_size)
        continue;
    } catch (const StoreError&) {
      continue;  // unreadable or another run's shard: redone
    }
    unrecorded += have.teacher_batch_size == 0;
    DISTILL_CHECK(have.teacher_batch_size == 0 || have.teacher_batch_size == meta.teacher_batch_size, StoreError,
                  "store ", dir, ": shard ", name, " was computed with teacher.batch_size ", have.teacher_batch_size,
                  ", this precompute uses ", meta.teacher_batch_size,
                  " (float16 targets can differ between batch "
                  "sizes, so a store holds one); set teacher.batch_size: ",
                  have.teacher_batch_size, " to resume this store, or precompute into a new store.path");
    DISTILL_CHECK(have.teacher_precision.empty() || have.teacher_precision == meta.teacher_precision, StoreError,
                  "store ", dir, ": shard ", name, " was computed by the teacher in ", have.teacher_precision,
                  ", this precompute runs it in ", meta.teacher_precision,
                  " (a store holds one teacher precision); set teacher.precision: ", have.teacher_precision,
                  " to resume this store, or precompute into a new store.path");
  }
  return unrecorded;
}

// Returns true when a committed shard for `r` exists, reads back with `meta` and, when the store's
// previous manifest lists it with a digest, still has that digest (Note [verified stores]).
// `digest` receives the file's digest when it was computed.
bool shard_is_committed(const std::string& dir, const StoreMeta& meta, const ShardRange& r, const ShardEntry* listed,
                        std::string& digest) {
  const auto path = (fs::path(dir) / shard_name(r)).string();
  if (!fs::exists(path)) return false;
  try {
    read_shard(path, meta, r);
    if (listed && !listed->digest.empty()) {
      verify_shard_digest(dir, *listed);
      digest = listed->digest;
    }
    return true;
  } catch (const StoreError& e) {
    spdlog::warn("redoing {}: {}", path, e.what());
    return false;
  }
}

// The manifest entry of a committed shard; `digest` = "" computes it.
ShardEntry entry_of(const ShardRange& r, const std::string& path, const std::string& digest) {
  return {shard_name(r), r, static_cast<std::int64_t>(fs::file_size(path)),
          digest.empty() ? file_digest(path) : digest};
}

}  // namespace

void prepare_store(const std::string& dir, const StoreMeta& meta) {
  fs::create_directories(dir);
  if (fs::exists(manifest_path(dir))) check_manifest(dir, meta);
  if (const auto n = check_shard_batch_sizes(dir, meta))
    spdlog::warn(
        "store {}: {} committed shards do not record the teacher.batch_size they were computed with "
        "(older distill); they are kept, and if it was not {} their float16 targets may differ in the "
        "last bit from the new shards'",
        dir, n, meta.teacher_batch_size);
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".partial-") != std::string::npos) fs::remove(e.path());
}

std::vector<ShardRange> rank_shards(const StoreMeta& meta, int rank, int world) {
  const auto all = shard_ranges(meta.num_examples, meta.shard_size);
  std::vector<ShardRange> mine;
  for (std::size_t k = static_cast<std::size_t>(rank); k < all.size(); k += static_cast<std::size_t>(world))
    mine.push_back(all[k]);
  return mine;
}

StoreWriter::StoreWriter(std::string dir, StoreMeta meta, int rank, int world)
    : dir_(std::move(dir)), meta_(std::move(meta)), rank_(rank), ranges_(rank_shards(meta_, rank, world)) {
  // A shard the previous manifest lists is kept only while it still has the listed digest.
  std::map<std::string, ShardEntry> listed;
  if (fs::exists(manifest_path(dir_)))
    for (const auto& e : read_manifest(dir_).shards) listed[e.file] = e;
  for (const auto& r : ranges_) {
    auto it = listed.find(shard_name(r));
    digests_.emplace_back();
    committed_.push_back(
        shard_is_committed(dir_, meta_, r, it == listed.end() ? nullptr : &it->second, digests_.back()));
  }
}

std::string StoreWriter::path(std::size_t i) const { return (fs::path(dir_) / shard_name(range(i))).string(); }

bool StoreWriter::keep_if_committed(std::size_t i) {
  if (!committed_.at(i)) return false;
  entries_.push_back(entry_of(range(i), path(i), digests_[i]));
  ++stats_.shards_skipped;
  stats_.rows_done += range(i).end - range(i).begin;
  return true;
}

EncodedShard StoreWriter::encode(std::size_t i, ShardTargets t) const {
  return encode_shard(meta_, range(i), std::move(t));
}

void StoreWriter::write(EncodedShard s) {
  DISTILL_CHECK(s.nonfinite.empty(), StoreError, "shard ", shard_name(s.range), " was not written: ", s.nonfinite);
  wait();
  writing_rows_ = s.range.end - s.range.begin;
  writing_ = std::async(std::launch::async, [dir = dir_, meta = meta_, rank = rank_, s = std::move(s)] {
    const auto t0 = std::chrono::steady_clock::now();
    const auto path = write_shard(dir, meta, s.range, s.arrays, s.example_ids, rank);
    auto e = entry_of(s.range, path, "");
    return std::make_pair(std::move(e), seconds_since(t0));
  });
}

void StoreWriter::wait() {
  if (!writing_.valid()) return;
  const auto t0 = std::chrono::steady_clock::now();
  auto [entry, seconds] = writing_.get();
  entries_.push_back(std::move(entry));
  stats_.write_seconds += seconds;
  stats_.wait_seconds += seconds_since(t0);
  ++stats_.shards_written;
  stats_.rows_written += writing_rows_;
  stats_.rows_done += writing_rows_;
}

std::string StoreWriter::entries() const {
  auto j = nlohmann::json::array();
  for (const auto& e : entries_)
    j.push_back(
        {{"file", e.file}, {"begin", e.range.begin}, {"end", e.range.end}, {"bytes", e.bytes}, {"digest", e.digest}});
  return j.dump();
}

Manifest StoreWriter::commit_manifest(const std::vector<std::string>& entries_of_ranks) const {
  Manifest m;
  m.meta = meta_;
  for (const auto& s : entries_of_ranks)
    for (const auto& e : nlohmann::json::parse(s))
      m.shards.push_back({e.at("file").get<std::string>(),
                          {e.at("begin").get<std::int64_t>(), e.at("end").get<std::int64_t>()},
                          e.at("bytes").get<std::int64_t>(),
                          e.at("digest").get<std::string>()});
  std::sort(m.shards.begin(), m.shards.end(),
            [](const ShardEntry& a, const ShardEntry& b) { return a.range.begin < b.range.begin; });
  if (rank_ == 0) write_manifest(dir_, m);
  return m;
}

}  // namespace distill
