#include "distill/store/shard.h"

#include <filesystem>

#include "distill/store/manifest.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r, const void* logits,
                        const std::vector<std::int64_t>& example_ids, int rank) {
  const auto count = static_cast<hsize_t>(r.end - r.begin);
  DISTILL_CHECK(example_ids.size() == count, StoreError, "shard ", shard_name(r), " got ", example_ids.size(),
                " example ids for ", count, " rows");
  const std::string final_path = (std::filesystem::path(dir) / shard_name(r)).string();
  const std::string tmp = final_path + ".partial-" + std::to_string(rank);
  {
    auto f = h5::File::create(tmp);
    const hsize_t chunk_rows = 256;
    f.write("/logits", store_dtype(meta.dtype), {count, static_cast<hsize_t>(meta.num_labels)}, logits, chunk_rows);
    f.write("/example_id", h5::Type::kInt64, {count}, example_ids.data(), chunk_rows);
    f.set_attr("/", "schema_version", meta.schema_version);
    f.set_attr("/", "teacher_fingerprint", meta.teacher_fingerprint);
    f.set_attr("/", "dataset_hash", meta.dataset_hash);
    f.set_attr("/", "split", meta.split);
    f.set_attr("/", "targets", meta.targets);
    f.set_attr("/", "dtype", meta.dtype);
    f.set_attr("/", "num_labels", meta.num_labels);
    f.set_attr("/", "num_examples", meta.num_examples);
    f.set_attr("/", "shard_size", meta.shard_size);
    f.set_attr("/", "example_begin", r.begin);
    f.set_attr("/", "example_end", r.end);
    f.set_attr("/", "example_count", static_cast<std::int64_t>(count));
    f.flush();
  }
  fsync_path(tmp);
  rename_durable(tmp, final_path);
  return final_path;
}

ShardData read_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r) {
  const std::string name = std::filesystem::path(path).filename().string();
  DISTILL_CHECK(path_exists(path), StoreError, "store shard ", name, " is missing from ",
                parent_dir(path), "; rerun 'distill precompute' to redo it");
  ShardData s;
  try {
    auto f = h5::File::open(path);
    s.meta.schema_version = f.attr_int("/", "schema_version");
    s.meta.teacher_fingerprint = f.attr_string("/", "teacher_fingerprint");
    s.meta.dataset_hash = f.attr_string("/", "dataset_hash");
    s.meta.split = f.attr_string("/", "split");
    s.meta.targets = f.attr_string("/", "targets");
    s.meta.dtype = f.attr_string("/", "dtype");
    s.meta.num_labels = f.attr_int("/", "num_labels");
    s.meta.num_examples = f.attr_int("/", "num_examples");
    s.meta.shard_size = f.attr_int("/", "shard_size");
    s.range = {f.attr_int("/", "example_begin"), f.attr_int("/", "example_end")};
    check_store_meta(s.meta, expect, "store shard " + name);
    DISTILL_CHECK(s.range.begin == r.begin && s.range.end == r.end, StoreError, "store shard ", name, " holds rows [",
                  s.range.begin, ", ", s.range.end, "), its name says [", r.begin, ", ", r.end, ")");
    auto info = f.info("/logits");
    const auto count = static_cast<hsize_t>(r.end - r.begin);
    DISTILL_CHECK(info.shape.size() == 2 && info.shape[0] == count &&
                      info.shape[1] == static_cast<hsize_t>(s.meta.num_labels),
                  StoreError, "store shard ", name, ": logits have the wrong shape for ", count, " x ",
                  s.meta.num_labels);
    s.logits.resize(count * s.meta.num_labels);
    f.read("/logits", h5::Type::kFloat32, s.logits.data());
  } catch (const StoreError&) {
    throw;
  } catch (const Error& e) {
    throw StoreError(str("store shard ", name, " is unreadable (truncated or corrupt; delete it and rerun "
                         "'distill precompute'): ", e.what()));
  }
  return s;
}

}  // namespace distill
