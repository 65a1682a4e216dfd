#include "distill/store/manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

using json = nlohmann::json;

std::string manifest_path(const std::string& dir) { return (std::filesystem::path(dir) / "manifest.json").string(); }

void write_manifest(const std::string& dir, const Manifest& m) {
  json j;
  const auto& s = m.meta;
  j["schema_version"] = s.schema_version;
  j["teacher_fingerprint"] = s.teacher_fingerprint;
  j["dataset_hash"] = s.dataset_hash;
  j["split"] = s.split;
  j["targets"] = s.targets;
  j["dtype"] = s.dtype;
  j["num_labels"] = s.num_labels;
  j["num_examples"] = s.num_examples;
  j["shard_size"] = s.shard_size;
  j["layout"] = json::parse(layout_json(s));
  if (s.teacher_batch_size > 0) j["teacher_batch_size"] = s.teacher_batch_size;
  if (!s.teacher_precision.empty()) j["teacher_precision"] = s.teacher_precision;
  j["shards"] = json::array();
  for (const auto& e : m.shards)
    j["shards"].push_back(
        {{"file", e.file}, {"begin", e.range.begin}, {"end", e.range.end}, {"bytes", e.bytes}, {"digest", e.digest}});
  write_file_atomic(manifest_path(dir), j.dump(2) + "\n");
}

Manifest read_manifest(const std::string& dir) {
  const auto path = manifest_path(dir);
  DISTILL_CHECK(path_exists(dir), StoreError, "store ", dir, " does not exist; run 'distill precompute' first");
  DISTILL_CHECK(path_exists(path), StoreError, "store ", dir,
                " has no manifest.json (precompute not finished?); rerun 'distill precompute'");
  Manifest m;
  try {
    auto j = json::parse(read_file(path));
    auto& s = m.meta;
    s.schema_version = j.at("schema_version").get<std::int64_t>();
    s.teacher_fingerprint = j.at("teacher_fingerprint").get<std::string>();
    s.dataset_hash = j.at("dataset_hash").get<std::string>();
    s.split = j.at("split").get<std::string>();
    s.targets = j.at("targets").get<std::string>();
    s.dtype = j.at("dtype").get<std::string>();
    s.num_labels = j.at("num_labels").get<std::int64_t>();
    s.num_examples = j.at("num_examples").get<std::int64_t>();
    s.shard_size = j.at("shard_size").get<std::int64_t>();
    if (j.contains("layout")) parse_layout_json(s, j.at("layout").dump(), path);
    if (j.contains("teacher_batch_size")) s.teacher_batch_size = j.at("teacher_batch_size").get<std::int64_t>();
    if (j.contains("teacher_precision")) s.teacher_precision = j.at("teacher_precision").get<std::string>();
    for (const auto& e : j.at("shards"))
      m.shards.push_back({e.at("file").get<std::string>(),
                          {e.at("begin").get<std::int64_t>(), e.at("end").get<std::int64_t>()},
                          e.at("bytes").get<std::int64_t>(),
                          e.at("digest").get<std::string>()});
  } catch (const json::exception& e) {
    throw StoreError(str(path, " is malformed: ", e.what()));
  }
  for (const auto& e : m.shards) {
    const bool ranged = e.range.begin >= 0 && e.range.begin < e.range.end;
    DISTILL_CHECK(
        ranged && e.file == shard_name(e.range), StoreError, path, ": shard entry \"", e.file, "\" for rows [",
        e.range.begin, ", ", e.range.end, ") should be the plain file name \"",
        ranged ? shard_name(e.range) : std::string("shard-<first>-<last>.h5"),
        "\" in the store directory; shards are read from the store directory only (rerun 'distill precompute')");
  }
  return m;
}

std::string shard_path(const std::string& dir, const ShardEntry& e) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(dir) / e.file;
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    // Both sides resolved, so "store/../store" and a symlinked store directory compare equal.
    const auto target = fs::weakly_canonical(path, ec);
    const auto root = fs::weakly_canonical(dir, ec);
    const bool inside = !ec && target.parent_path() == root;
    DISTILL_CHECK(inside, StoreError, manifest_path(dir), ": shard entry \"", e.file, "\" is a link to ",
                  target.string(), ", outside the store directory ", dir,
                  "; shards are read from the store directory only");
  }
  return path.string();
}

void check_store_meta(const StoreMeta& have, const StoreMeta& expect, const std::string& where) {
  DISTILL_CHECK(have.schema_version == kStoreSchemaVersion, StoreError, where, " has schema version ",
                have.schema_version, ", this distill reads ", kStoreSchemaVersion, "; rerun 'distill precompute'");
  DISTILL_CHECK(expect.teacher_fingerprint.empty() || have.teacher_fingerprint == expect.teacher_fingerprint,
                StoreError, where, " was made by teacher ", have.teacher_fingerprint, ", this run's teacher is ",
                expect.teacher_fingerprint, "; precompute into a new store.path");
  DISTILL_CHECK(have.dataset_hash == expect.dataset_hash, StoreError, where, " was made from data set ",
                have.dataset_hash, ", this run's data set is ", expect.dataset_hash,
                "; precompute into a new store.path");
  DISTILL_CHECK(have.split == expect.split, StoreError, where, " holds split '", have.split, "', the run uses '",
                expect.split, "'");
  DISTILL_CHECK(expect.num_labels == 0 || have.num_labels == expect.num_labels, StoreError, where, " holds ",
                have.num_labels, " labels, the student expects ", expect.num_labels);
  DISTILL_CHECK(expect.num_examples == 0 || have.num_examples == expect.num_examples, StoreError, where, " covers ",
                have.num_examples, " examples, the split has ", expect.num_examples);
  DISTILL_CHECK(have.targets == "logits" || have.targets == "mlm_topk", StoreError, where, " holds targets '",
                have.targets, "', this distill reads 'logits' and 'mlm_topk'");
  DISTILL_CHECK(expect.targets.empty() || have.targets == expect.targets, StoreError, where, " holds targets '",
                have.targets, "', the run needs '", expect.targets, "'");
  DISTILL_CHECK(have.teacher_batch_size == 0 || expect.teacher_batch_size == 0 ||
                    have.teacher_batch_size == expect.teacher_batch_size,
                StoreError, where, " was computed with teacher.batch_size ", have.teacher_batch_size, ", expected ",
                expect.teacher_batch_size,
                " (float16 targets can differ between batch sizes, so a store holds one); "
                "set teacher.batch_size: ",
                have.teacher_batch_size, " or precompute into a new store.path");
  DISTILL_CHECK(have.teacher_precision.empty() || expect.teacher_precision.empty() ||
                    have.teacher_precision == expect.teacher_precision,
                StoreError, where, " was computed by the teacher in ", have.teacher_precision, ", expected ",
                expect.teacher_precision,
                " (a store holds one teacher precision); set teacher.precision: ", have.teacher_precision,
                " or precompute into a new store.path");
}

}  // namespace distill
