#include "distill/store/verify.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "distill/store/shard.h"
#include "distill/util/error.h"
#include "distill/util/hash.h"

namespace distill {

namespace fs = std::filesystem;

void verify_shard_digest(const std::string& dir, const ShardEntry& e) {
  if (e.digest.empty()) return;
  const auto path = shard_path(dir, e);
  std::string found;
  try {
    found = file_digest(path);
  } catch (const Error& err) {
    throw StoreError(str("store shard ", e.file, " in ", dir, " cannot be read for its digest: ", err.what(),
                         "; rerun 'distill precompute' with this store.path to redo rows [", e.range.begin, ", ",
                         e.range.end, ")"));
  }
  DISTILL_CHECK(found == e.digest, StoreError, "store shard ", e.file, " in ", dir, " has digest ", found,
                ", manifest.json says ", e.digest,
                " (corrupt or replaced); rerun 'distill precompute' with this "
                "store.path to redo rows [",
                e.range.begin, ", ", e.range.end, ")");
}

bool StoreHealth::healthy() const {
  return has_manifest && problems.empty() && missing.empty() && bad.empty() && covered == examples;
}

namespace {

// Rows of [0, n) that `ranges` cover, and the gaps between them.
std::int64_t coverage(std::vector<ShardRange> ranges, std::int64_t n, std::vector<ShardRange>& gaps) {
  std::sort(ranges.begin(), ranges.end(), [](const ShardRange& a, const ShardRange& b) { return a.begin < b.begin; });
  std::int64_t at = 0, covered = 0;
  for (const auto& r : ranges) {
    const auto b = std::max(r.begin, at), e = std::min(r.end, n);
    if (b >= e) continue;
    if (b > at) gaps.push_back({at, b});
    covered += e - b;
    at = e;
  }
  if (at < n) gaps.push_back({at, n});
  return covered;
}

}  // namespace

StoreHealth check_store(const std::string& dir, bool verify) {
  DISTILL_CHECK(fs::is_directory(dir), StoreError, "store ", dir, " is not a directory");
  StoreHealth h;
  h.verified = verify;
  std::map<std::string, ShardRange> on_disk;  // shard files by name, sorted by range
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    ShardRange r;
    if (name.find(".partial-") != std::string::npos)
      h.partial.push_back(name);
    else if (parse_shard_name(name, &r))
      on_disk[name] = r;
  }
  std::sort(h.partial.begin(), h.partial.end());
  std::vector<ShardEntry> entries;
  if (fs::exists(manifest_path(dir))) {
    try {
      h.manifest = read_manifest(dir);
      h.has_manifest = true;
      entries = h.manifest.shards;
    } catch (const StoreError& e) {
      h.problems.push_back(e.what());
    }
  } else {
    h.problems.push_back(str("store ", dir,
                             " has no manifest.json (precompute not finished?); rerun 'distill "
                             "precompute' with this store.path"));
  }
  if (!h.has_manifest) {
    // Judge the shard files on their own, against the first readable one's attributes.
    for (const auto& [name, r] : on_disk) {
      if (entries.empty()) {
        try {
          h.manifest.meta = read_shard_meta((fs::path(dir) / name).string()).first;
        } catch (const StoreError&) {
          h.bad.push_back(name + ": unreadable");
          continue;
        }
      }
      entries.push_back({name, r, -1, ""});
    }
  }
  const auto& meta = h.manifest.meta;
  h.examples = meta.num_examples;
  std::sort(entries.begin(), entries.end(),
            [](const ShardEntry& a, const ShardEntry& b) { return a.range.begin < b.range.begin; });
  std::vector<ShardRange> usable;
  std::int64_t end = 0;
  for (const auto& e : entries) {
    if (h.has_manifest && e.range.begin < end)
      h.problems.push_back(
          str("manifest.json lists ", e.file, " overlapping the previous shard (rows up to ", end, ")"));
    end = std::max(end, e.range.end);
    on_disk.erase(e.file);
    try {
      const auto path = shard_path(dir, e);
      if (!fs::exists(path)) {
        h.missing.push_back(e.file);
        continue;
      }
      const auto bytes = static_cast<std::int64_t>(fs::file_size(path));
      DISTILL_CHECK(e.bytes < 0 || bytes == e.bytes, StoreError, "is ", bytes, " bytes, manifest.json says ", e.bytes);
      read_shard(path, meta, e.range);
      if (verify && !e.digest.empty()) verify_shard_digest(dir, e);
      if (verify) ++(e.digest.empty() ? h.digests_absent : h.digests_checked);
      usable.push_back(e.range);
    } catch (const Error& err) {
      h.bad.push_back(e.file + ": " + err.what());
    }
  }
  if (h.has_manifest)
    for (const auto& [name, r] : on_disk) h.unlisted.push_back(name);
  h.covered = coverage(usable, h.examples, h.gaps);
  return h;
}

}  // namespace distill
