#include "distill/data/dataset.h"

#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "distill/io/h5.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"

namespace distill {

const TokenSplit& Dataset::split(const std::string& name) const {
  auto it = splits.find(name);
  if (it == splits.end()) {
    std::string have;
    for (const auto& [k, v] : splits) have += (have.empty() ? "" : ", ") + k;
    throw DataError(str(path, " has no split '", name, "' (it has: ", have, ")"));
  }
  return it->second;
}

std::string dataset_content_hash(const Dataset& d) {
  Hasher h;
  for (const auto& [name, s] : d.splits) {
    h.update(name).update_pod(s.n).update_pod(s.seq);
    h.update(s.input_ids.data(), s.input_ids.size() * 4);
    h.update(s.attention_mask.data(), s.attention_mask.size() * 4);
    h.update(s.token_type_ids.data(), s.token_type_ids.size() * 4);
    h.update(s.labels.data(), s.labels.size() * 8);
    h.update(s.example_id.data(), s.example_id.size() * 8);
    // Hashed only when present, so the hashes of sequence data sets stay as they were.
    if (s.dim > 0) h.update_pod(s.dim).update(s.features.data(), s.features.size() * 4);
    if (!s.mlm_labels.empty()) h.update(s.mlm_labels.data(), s.mlm_labels.size() * 4);
  }
  if (d.task != "sequence") h.update(d.task);
  h.update(nlohmann::json(d.label_names).dump());
  return h.hex();
}

namespace {
void check_split(const Dataset& d, const std::string& name, const TokenSplit& s) {
  DISTILL_CHECK(d.task == "sequence" || d.task == "features" || d.task == "mlm", DataError, d.path, ": task '",
                d.task, "', expected sequence, features or mlm");
  if (d.task == "features") {
    DISTILL_CHECK(s.dim > 0 && s.seq == 0 && s.features.size() == static_cast<std::size_t>(s.n * s.dim), DataError,
                  d.path, ": split ", name, " features disagree with n = ", s.n, ", dim = ", s.dim);
    for (std::size_t i = 0; i < s.features.size(); ++i)
      DISTILL_CHECK(std::isfinite(s.features[i]), DataError, d.path, ": split ", name, " example ",
                    i / static_cast<std::size_t>(s.dim), " feature ", i % static_cast<std::size_t>(s.dim),
                    " is not finite");
  }
  if (d.task == "mlm") {
    DISTILL_CHECK(s.mlm_labels.size() == static_cast<std::size_t>(s.n * s.seq), DataError, d.path, ": split ", name,
                  " mlm_labels disagree with n = ", s.n, ", seq = ", s.seq);
    for (std::size_t i = 0; i < s.mlm_labels.size(); ++i)
      DISTILL_CHECK(s.mlm_labels[i] == kIgnoreLabel || (s.mlm_labels[i] >= 0 && s.mlm_labels[i] < d.vocab_size),
                    DataError, d.path, ": split ", name, " mlm label ", i, " is ", s.mlm_labels[i], ", expected -100 or 0..",
                    d.vocab_size - 1);
  }
  const auto cells = static_cast<std::size_t>(s.n * s.seq);
  DISTILL_CHECK(s.input_ids.size() == cells && s.attention_mask.size() == cells && s.token_type_ids.size() == cells &&
                    s.labels.size() == static_cast<std::size_t>(s.n) && s.example_id.size() == s.labels.size(),
                DataError, d.path, ": split ", name, " arrays disagree with n = ", s.n, ", seq = ", s.seq);
  for (std::size_t i = 0; i < s.labels.size() && d.task != "mlm"; ++i)
    DISTILL_CHECK(s.labels[i] >= 0 && s.labels[i] < d.num_labels(), DataError, d.path, ": split ", name,
                  " example ", i, " has label ", s.labels[i], ", expected 0..", d.num_labels() - 1);
  for (std::size_t i = 0; i < cells; ++i)
    DISTILL_CHECK(s.input_ids[i] >= 0 && s.input_ids[i] < d.vocab_size, DataError, d.path, ": split ", name,
                  " token ", i, " has id ", s.input_ids[i], ", outside the vocabulary of ", d.vocab_size);
}
}  // namespace

void write_dataset(const std::string& path, Dataset d) {
  d.path = path;
  for (const auto& [name, s] : d.splits) check_split(d, name, s);
  d.content_hash = dataset_content_hash(d);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    auto f = h5::File::create(tmp);
    for (const auto& [name, s] : d.splits) {
      const std::string g = "/" + name;
      f.create_group(g);
      std::vector<hsize_t> mat = {static_cast<hsize_t>(s.n), static_cast<hsize_t>(s.seq)};
      std::vector<hsize_t> vec = {static_cast<hsize_t>(s.n)};
      const hsize_t chunk = 1024;
      if (d.task != "features") {
        f.write(g + "/input_ids", h5::Type::kInt32, mat, s.input_ids.data(), chunk);
        f.write(g + "/attention_mask", h5::Type::kInt32, mat, s.attention_mask.data(), chunk);
        f.write(g + "/token_type_ids", h5::Type::kInt32, mat, s.token_type_ids.data(), chunk);
      }
      f.write(g + "/labels", h5::Type::kInt64, vec, s.labels.data(), chunk);
      f.write(g + "/example_id", h5::Type::kInt64, vec, s.example_id.data(), chunk);
      if (s.dim > 0)
        f.write(g + "/features", h5::Type::kFloat32, {static_cast<hsize_t>(s.n), static_cast<hsize_t>(s.dim)},
                s.features.data(), chunk);
      if (!s.mlm_labels.empty()) f.write(g + "/mlm_labels", h5::Type::kInt32, mat, s.mlm_labels.data(), chunk);
    }
    if (d.task != "sequence") f.set_attr("/", "task", d.task);
    f.set_attr("/", "schema_version", kDatasetSchemaVersion);
    f.set_attr("/", "vocab_size", d.vocab_size);
    f.set_attr("/", "vocab_hash", d.vocab_hash);
    f.set_attr("/", "max_length", d.max_length);
    f.set_attr("/", "label_names", nlohmann::json(d.label_names).dump());
    f.set_attr("/", "content_hash", d.content_hash);
    f.flush();
  }
  fsync_path(tmp);
  rename_durable(tmp, path);
}

Dataset read_dataset(const std::string& path) {
  DISTILL_CHECK(path_exists(path), DataError, "data set ", path,
                " does not exist (make one with 'distill prepare')");
  auto f = h5::File::open(path);
  Dataset d;
  d.path = path;
  DISTILL_CHECK(f.has_attr("/", "schema_version"), DataError, path, " is not a distill data set (no schema_version)");
  auto version = f.attr_int("/", "schema_version");
  DISTILL_CHECK(version == kDatasetSchemaVersion, DataError, path, " has schema version ", version,
                ", this distill reads ", kDatasetSchemaVersion, "; rerun 'distill prepare'");
  d.vocab_size = f.attr_int("/", "vocab_size");
  d.vocab_hash = f.attr_string("/", "vocab_hash");
  d.max_length = f.attr_int("/", "max_length");
  d.label_names = nlohmann::json::parse(f.attr_string("/", "label_names")).get<std::vector<std::string>>();
  d.content_hash = f.attr_string("/", "content_hash");
  if (f.has_attr("/", "task")) d.task = f.attr_string("/", "task");
  for (const char* name : {"train", "dev", "test"}) {
    const std::string g = std::string("/") + name;
    if (!f.exists(g)) continue;
    TokenSplit s;
    const std::string first = d.task == "features" ? "/features" : "/input_ids";
    auto info = f.info(g + first);
    DISTILL_CHECK(info.shape.size() == 2, DataError, path, ": ", g, first, " is not 2-D");
    s.n = static_cast<std::int64_t>(info.shape[0]);
    if (d.task != "features") {
      s.seq = static_cast<std::int64_t>(info.shape[1]);
      s.input_ids = f.read_vector<std::int32_t>(g + "/input_ids", h5::Type::kInt32);
      s.attention_mask = f.read_vector<std::int32_t>(g + "/attention_mask", h5::Type::kInt32);
      s.token_type_ids = f.read_vector<std::int32_t>(g + "/token_type_ids", h5::Type::kInt32);
    }
    s.labels = f.read_vector<std::int64_t>(g + "/labels", h5::Type::kInt64);
    s.example_id = f.read_vector<std::int64_t>(g + "/example_id", h5::Type::kInt64);
    if (d.task == "features") {
      auto fi = f.info(g + "/features");
      DISTILL_CHECK(fi.shape.size() == 2, DataError, path, ": ", g, "/features is not 2-D");
      s.dim = static_cast<std::int64_t>(fi.shape[1]);
      s.features = f.read_vector<float>(g + "/features", h5::Type::kFloat32);
    }
    if (d.task == "mlm") s.mlm_labels = f.read_vector<std::int32_t>(g + "/mlm_labels", h5::Type::kInt32);
    check_split(d, name, s);
    d.splits[name] = std::move(s);
  }
  auto h = dataset_content_hash(d);
  DISTILL_CHECK(h == d.content_hash, DataError, path, " content hash is ", h, " but its attribute says ",
                d.content_hash, " (file altered after prepare?)");
  return d;
}

}  // namespace distill
