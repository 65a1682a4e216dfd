#include "distill/store/shard.h"

#include <filesystem>
#include <tuple>
#include <utility>

#include "distill/store/manifest.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r,
                        const std::vector<ShardArray>& arrays, const std::vector<std::int64_t>& example_ids, int rank) {
  const auto count = static_cast<hsize_t>(r.end - r.begin);
  DISTILL_CHECK(example_ids.size() == count, StoreError, "shard ", shard_name(r), " got ", example_ids.size(),
                " example ids for ", count, " rows");
  const std::string final_path = (std::filesystem::path(dir) / shard_name(r)).string();
  const std::string tmp = final_path + ".partial-" + std::to_string(rank);
  {
    auto f = h5::File::create(tmp, h5::File::Format::kChecksummed);
    if (!meta.hidden_layers.empty() || !meta.attention_layers.empty()) {
      f.create_group("/hidden");
      f.create_group("/attention");
    }
    if (!meta.qkv_layers.empty())
      for (const char* g : {"/query", "/key", "/value"}) f.create_group(g);
    for (const auto& a : arrays) f.write("/" + a.name, a.type, a.shape, a.data, a.chunk_rows);
    f.write("/example_id", h5::Type::kInt64, {count}, example_ids.data(), 256);
    f.set_attr("/", "schema_version", meta.schema_version);
    f.set_attr("/", "teacher_fingerprint", meta.teacher_fingerprint);
    f.set_attr("/", "dataset_hash", meta.dataset_hash);
    f.set_attr("/", "split", meta.split);
    f.set_attr("/", "targets", meta.targets);
    f.set_attr("/", "dtype", meta.dtype);
    f.set_attr("/", "num_labels", meta.num_labels);
    f.set_attr("/", "num_examples", meta.num_examples);
    f.set_attr("/", "shard_size", meta.shard_size);
    f.set_attr("/", "layout", layout_json(meta));
    if (meta.teacher_batch_size > 0) f.set_attr("/", "teacher_batch_size", meta.teacher_batch_size);
    if (!meta.teacher_precision.empty()) f.set_attr("/", "teacher_precision", meta.teacher_precision);
    f.set_attr("/", "example_begin", r.begin);
    f.set_attr("/", "example_end", r.end);
    f.set_attr("/", "example_count", static_cast<std::int64_t>(count));
    f.flush();
  }
  fsync_path(tmp);
  rename_durable(tmp, final_path);
  return final_path;
}

std::string write_shard(const std::string& dir, const StoreMeta& meta, const ShardRange& r, const void* logits,
                        const std::vector<std::int64_t>& example_ids, int rank) {
  const auto count = static_cast<hsize_t>(r.end - r.begin);
  return write_shard(dir, meta, r,
                     {{"logits", store_dtype(meta.dtype), {count, static_cast<hsize_t>(meta.num_labels)}, logits}},
                     example_ids, rank);
}

namespace {

// The attributes of an open shard file.
std::pair<StoreMeta, ShardRange> meta_of(const h5::File& f, const std::string& path) {
  StoreMeta m;
  m.schema_version = f.attr_int("/", "schema_version");
  m.teacher_fingerprint = f.attr_string("/", "teacher_fingerprint");
  m.dataset_hash = f.attr_string("/", "dataset_hash");
  m.split = f.attr_string("/", "split");
  m.targets = f.attr_string("/", "targets");
  m.dtype = f.attr_string("/", "dtype");
  m.num_labels = f.attr_int("/", "num_labels");
  m.num_examples = f.attr_int("/", "num_examples");
  m.shard_size = f.attr_int("/", "shard_size");
  if (f.has_attr("/", "layout")) parse_layout_json(m, f.attr_string("/", "layout"), path);
  if (f.has_attr("/", "teacher_batch_size")) m.teacher_batch_size = f.attr_int("/", "teacher_batch_size");
  if (f.has_attr("/", "teacher_precision")) m.teacher_precision = f.attr_string("/", "teacher_precision");
  return {m, {f.attr_int("/", "example_begin"), f.attr_int("/", "example_end")}};
}

std::string unreadable(const std::string& name, const Error& e) {
  return str("store shard ", name,
             " is unreadable (truncated or corrupt; delete it and rerun "
             "'distill precompute'): ",
             e.what());
}

}  // namespace

std::pair<StoreMeta, ShardRange> read_shard_meta(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  try {
    return meta_of(h5::File::open(path), path);
  } catch (const StoreError&) {
    throw;
  } catch (const Error& e) {
    throw StoreError(unreadable(name, e));
  }
}

CheckedShard check_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r) {
  const std::string name = std::filesystem::path(path).filename().string();
  DISTILL_CHECK(path_exists(path), StoreError, "store shard ", name, " is missing from ", parent_dir(path),
                "; rerun 'distill precompute' to redo it");
  CheckedShard s;
  try {
    s.file = h5::File::open(path);
    const auto& f = s.file;
    std::tie(s.meta, s.range) = meta_of(f, path);
    check_store_meta(s.meta, expect, "store shard " + name);
    DISTILL_CHECK(layout_json(s.meta) == layout_json(expect), StoreError, "store shard ", name, " has layout ",
                  layout_json(s.meta), ", the store's is ", layout_json(expect), "; rerun 'distill precompute'");
    DISTILL_CHECK(s.range.begin == r.begin && s.range.end == r.end, StoreError, "store shard ", name, " holds rows [",
                  s.range.begin, ", ", s.range.end, "), its name says [", r.begin, ", ", r.end, ")");
    const auto count = static_cast<hsize_t>(r.end - r.begin);
    auto expect_shape = [&](const std::string& ds, const std::vector<hsize_t>& shape) {
      DISTILL_CHECK(f.exists(ds) && f.info(ds).shape == shape, StoreError, "store shard ", name, ": ", ds,
                    f.exists(ds) ? " has the wrong shape" : " is missing", " (expected ", shape.size(), "-D ",
                    shape.empty() ? 0 : shape[0], " x ...)");
    };
    if (s.meta.targets == "mlm_topk") {
      expect_shape("/row_offsets", {count + 1});
      s.row_offsets = f.read_vector<std::int64_t>("/row_offsets", h5::Type::kInt64);
      DISTILL_CHECK(s.row_offsets.front() == 0, StoreError, "store shard ", name, ": row_offsets start at ",
                    s.row_offsets.front(), ", not 0");
      for (std::size_t i = 0; i + 1 < s.row_offsets.size(); ++i)
        DISTILL_CHECK(s.row_offsets[i] <= s.row_offsets[i + 1], StoreError, "store shard ", name,
                      ": row_offsets decrease at ", i);
      const auto tokens = static_cast<hsize_t>(s.row_offsets.back());
      const auto k = static_cast<hsize_t>(s.meta.topk);
      expect_shape("/topk_values", {tokens, k});
      expect_shape("/topk_indices", {tokens, k});
      expect_shape("/lse", {tokens});
      return s;
    }
    const auto seq = static_cast<hsize_t>(s.meta.seq);
    for (long l : s.meta.hidden_layers)
      expect_shape("/hidden/" + std::to_string(l), {count, seq, static_cast<hsize_t>(s.meta.hidden_size)});
    for (long l : s.meta.attention_layers)
      expect_shape("/attention/" + std::to_string(l), {count, static_cast<hsize_t>(s.meta.heads), seq, seq});
    for (long l : s.meta.qkv_layers)
      for (const char* part : {"/query/", "/key/", "/value/"})
        expect_shape(part + std::to_string(l), {count, seq, static_cast<hsize_t>(s.meta.hidden_size)});
    auto info = f.info("/logits");
    DISTILL_CHECK(
        info.shape.size() == 2 && info.shape[0] == count && info.shape[1] == static_cast<hsize_t>(s.meta.num_labels),
        StoreError, "store shard ", name, ": logits have the wrong shape for ", count, " x ", s.meta.num_labels);
  } catch (const StoreError&) {
    throw;
  } catch (const Error& e) {
    throw StoreError(unreadable(name, e));
  }
  return s;
}

ShardData read_shard(const std::string& path, const StoreMeta& expect, const ShardRange& r) {
  auto c = check_shard(path, expect, r);
  ShardData s;
  s.meta = std::move(c.meta);
  s.range = c.range;
  s.row_offsets = std::move(c.row_offsets);
  try {
    const auto& f = c.file;
    if (s.meta.targets == "mlm_topk") {
      s.topk_values = f.read_vector<float>("/topk_values", h5::Type::kFloat32);
      s.topk_indices = f.read_vector<std::int32_t>("/topk_indices", h5::Type::kInt32);
      s.lse = f.read_vector<float>("/lse", h5::Type::kFloat32);
    } else {
      s.logits.resize(static_cast<std::size_t>((r.end - r.begin) * s.meta.num_labels));
      f.read("/logits", h5::Type::kFloat32, s.logits.data());
    }
  } catch (const StoreError&) {
    throw;
  } catch (const Error& e) {
    throw StoreError(unreadable(std::filesystem::path(path).filename().string(), e));
  }
  return s;
}

}  // namespace distill
