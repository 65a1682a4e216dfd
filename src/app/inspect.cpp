#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "distill/app/commands.h"
#include "distill/data/dataset.h"
#include "distill/io/h5.h"
#include "distill/io/safetensors.h"
#include "distill/store/manifest.h"
#include "distill/store/shard.h"
#include "distill/store/verify.h"
#include "distill/train/checkpoint.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json inspect_dataset(const std::string& path) {
  auto d = read_dataset(path);
  json j = {{"kind", "dataset"},
            {"path", path},
            {"schema_version", d.regression ? kRegressionSchemaVersion : kDatasetSchemaVersion},
            {"vocab_size", d.vocab_size},
            {"vocab_hash", d.vocab_hash},
            {"max_length", d.max_length},
            {"task", d.task},
            {"regression", d.regression},
            {"label_names", d.label_names},
            {"content_hash", d.content_hash},
            {"file_bytes", static_cast<std::int64_t>(fs::file_size(path))}};
  // read_dataset checks small files whole; larger ones are checked here (every row once).
  if (fs::file_size(path) > kFullCheckBytes) check_dataset_content(d);
  j["content_verified"] = true;
  for (const auto& [name, s] : d.splits) {
    json sp = {{"examples", s.n}, {"seq", s.seq}};
    std::int64_t masked = 0;
    std::vector<std::int64_t> counts(d.num_labels(), 0);
    double lo = INFINITY, hi = -INFINITY, sum = 0;  // regression scores of the labeled rows
    s.scan([&](const DataSplit& b, std::int64_t) {
      for (float v : b.scores)
        if (std::isfinite(v)) {
          lo = std::min<double>(lo, v);
          hi = std::max<double>(hi, v);
          sum += v;
        }
      for (auto y : b.mlm_labels) masked += y != kIgnoreLabel;
      if (d.task != "mlm")
        for (auto y : b.labels)
          if (y != kIgnoreLabel) ++counts[y];
    });
    if (d.task == "mlm") {
      sp["masked_tokens"] = masked;
    } else {
      sp["labeled"] = s.labeled_rows();
      if (!d.regression) sp["label_counts"] = counts;
      if (d.regression && s.labeled_rows() > 0)
        sp["scores"] = {{"min", lo}, {"max", hi}, {"mean", sum / static_cast<double>(s.labeled_rows())}};
    }
    if (d.task == "features") sp["features"] = s.dim;
    j["splits"][name] = sp;
  }
  return j;
}

// What the store directory actually holds (store/verify.h), not what its manifest header says:
// "examples" counts rows in usable shards, "split_examples" the rows the store is for.
json inspect_store(const std::string& dir, bool verify, StoreHealth& h) {
  h = check_store(dir, verify);
  const auto& s = h.manifest.meta;
  std::int64_t bytes = 0;
  for (const auto& e : h.manifest.shards) bytes += e.bytes;
  json gaps = json::array();
  for (const auto& g : h.gaps) gaps.push_back({g.begin, g.end});
  std::string digests = "not checked (use --verify)";
  if (verify)
    digests = h.bad.empty() && h.missing.empty()
                  ? str("ok: ", h.digests_checked, " of ", h.manifest.shards.size(), " shards match manifest.json",
                        h.digests_absent ? str(", ", h.digests_absent, " list no digest") : std::string())
                  : str(h.digests_checked, " shards match manifest.json; see bad_shards");
  json j = {{"kind", "store"},
            {"path", dir},
            {"status", h.healthy() ? "healthy" : "broken"},
            {"problems", h.problems},
            {"examples", h.covered},
            {"split_examples", h.examples},
            {"gaps", gaps},
            {"missing_shards", h.missing},
            {"bad_shards", h.bad},
            {"unlisted_shards", h.unlisted},
            {"partial_files", h.partial},
            {"digests", digests}};
  if (!h.has_manifest) return j;
  json layout = json::parse(layout_json(s));
  j.update({{"layout", layout},
            {"schema_version", s.schema_version},
            {"teacher_fingerprint", s.teacher_fingerprint},
            {"dataset_hash", s.dataset_hash},
            {"split", s.split},
            {"targets", s.targets},
            {"dtype", s.dtype},
            {"num_labels", s.num_labels},
            {"shard_size", s.shard_size},
            {"teacher_batch_size", s.teacher_batch_size},
            {"teacher_precision", s.teacher_precision.empty() ? std::string("not recorded") : s.teacher_precision},
            {"shards", h.manifest.shards.size()},
            {"bytes", bytes},
            {"bytes_per_example", s.num_examples ? static_cast<double>(bytes) / s.num_examples : 0.0}});
  return j;
}

// A directory of shard files without a manifest is a store too (an unfinished precompute).
bool looks_like_store(const std::string& dir) {
  ShardRange r;
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    if (parse_shard_name(name, &r) || name.find(".partial-") != std::string::npos) return true;
  }
  return false;
}

json inspect_shard(const std::string& path) {
  auto f = h5::File::open(path);
  const bool topk = f.attr_string("/", "targets") == "mlm_topk";
  auto info = f.info(topk ? "/topk_values" : "/logits");
  return {{"kind", "shard"},
          {"path", path},
          {"schema_version", f.attr_int("/", "schema_version")},
          {"targets", f.attr_string("/", "targets")},
          {"teacher_fingerprint", f.attr_string("/", "teacher_fingerprint")},
          {"dataset_hash", f.attr_string("/", "dataset_hash")},
          {"dtype", f.attr_string("/", "dtype")},
          {"example_begin", f.attr_int("/", "example_begin")},
          {"example_end", f.attr_int("/", "example_end")},
          {topk ? "topk_values_shape" : "logits_shape", info.shape},
          {"fletcher32", info.fletcher32},
          {"bytes", static_cast<std::int64_t>(fs::file_size(path))}};
}

json inspect_model_file(const std::string& path) {
  auto st = load_safetensors(path);
  std::int64_t params = 0;
  for (const auto& [n, t] : st.tensors) {
    std::int64_t k = 1;
    for (auto d : t.shape) k *= d;
    params += k;
  }
  json j = {{"kind", "weights"},
            {"path", path},
            {"tensors", st.tensors.size()},
            {"elements", params},
            {"bytes", static_cast<std::int64_t>(fs::file_size(path))},
            {"metadata", st.metadata}};
  return j;
}

json inspect_checkpoints(const std::string& root) {
  auto ck = load_latest_checkpoint(root);
  DISTILL_CHECK(ck.has_value(), DataError, root, " has no 'latest' checkpoint");
  const auto& s = ck->state;
  json j = {{"kind", "checkpoint"},
            {"path", ck->dir},
            {"step", s.step},
            {"epoch", s.epoch},
            {"epoch_step", s.epoch_step},
            {"best_metric", s.best_metric},
            {"world_size", s.world_size},
            {"config_hash", s.config_hash},
            {"dataset_hash", s.dataset_hash},
            {"teacher_fingerprint", s.teacher_fingerprint},
            {"precision", s.precision.empty() ? std::string("not recorded") : s.precision},
            {"all_checkpoints", list_checkpoints(root)}};
  j["model"] = inspect_model_file(ck->dir + "/model.safetensors");
  return j;
}

void print_flat(const json& j, const std::string& prefix) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      print_flat(*it, key);
    else
      std::cout << key << ": " << it->dump() << "\n";
  }
}

}  // namespace

void cmd_inspect(const std::string& path, bool as_json, bool verify) {
  DISTILL_CHECK(fs::exists(path), DataError, path, " does not exist");
  json j;
  std::optional<StoreHealth> store;
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / "manifest.json") || looks_like_store(path))
      j = inspect_store(path, verify, store.emplace());
    else if (fs::exists(fs::path(path) / "latest"))
      j = inspect_checkpoints(path);
    else if (fs::exists(fs::path(checkpoints_dir(path)) / "latest"))
      j = inspect_checkpoints(checkpoints_dir(path));
    else if (fs::exists(fs::path(path) / "model.safetensors"))
      j = inspect_model_file(path + "/model.safetensors");
    else
      throw DataError(str(path, " is neither a store (manifest.json) nor a checkpoint directory"));
  } else if (fs::path(path).extension() == ".safetensors") {
    j = inspect_model_file(path);
  } else {
    auto f = h5::File::open(path);
    if (f.has_attr("/", "content_hash"))
      j = inspect_dataset(path);
    else if (f.has_attr("/", "teacher_fingerprint"))
      j = inspect_shard(path);
    else
      throw DataError(str(path, " is an HDF5 file but neither a distill data set nor a store shard"));
  }
  if (as_json)
    std::cout << j.dump(2) << std::endl;
  else
    print_flat(j, "");
  if (!store || store->healthy()) return;
  // A broken store is a failed inspect (non-zero exit), after the report.
  const auto& h = *store;
  std::string what = h.problems.empty() ? "" : h.problems.front() + "; ";
  throw StoreError(
      str("store ", path, " is broken: ", what, "usable shards cover ", h.covered, " of ", h.examples, " examples",
          h.gaps.empty() ? "" : str(" (first gap: rows [", h.gaps.front().begin, ", ", h.gaps.front().end, "))"), ", ",
          h.missing.size(), " listed shards missing, ", h.bad.size(), " unusable",
          h.bad.empty() ? std::string() : " (" + h.bad.front() + ")",
          "; rerun 'distill precompute' with this store.path to redo what is missing"));
}

}  // namespace distill
