#include "distill/data/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/io/h5.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/hash.h"

namespace distill {

const DataSplit& Dataset::split(const std::string& name) const {
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
void check_split(const Dataset& d, const std::string& name, const DataSplit& s) {
  DISTILL_CHECK(d.task == "sequence" || d.task == "features" || d.task == "mlm", DataError, d.path, ": task '", d.task,
                "', expected sequence, features or mlm");
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
                    DataError, d.path, ": split ", name, " mlm label ", i, " is ", s.mlm_labels[i],
                    ", expected -100 or 0..", d.vocab_size - 1);
  }
  const auto cells = static_cast<std::size_t>(s.n * s.seq);
  DISTILL_CHECK(s.input_ids.size() == cells && s.attention_mask.size() == cells && s.token_type_ids.size() == cells &&
                    s.labels.size() == static_cast<std::size_t>(s.n) && s.example_id.size() == s.labels.size(),
                DataError, d.path, ": split ", name, " arrays disagree with n = ", s.n, ", seq = ", s.seq);
  for (std::size_t i = 0; i < s.labels.size() && d.task != "mlm"; ++i)
    DISTILL_CHECK(s.labels[i] >= 0 && s.labels[i] < d.num_labels(), DataError, d.path, ": split ", name, " example ", i,
                  " has label ", s.labels[i], ", expected 0..", d.num_labels() - 1);
  for (std::size_t i = 0; i < cells; ++i)
    DISTILL_CHECK(s.input_ids[i] >= 0 && s.input_ids[i] < d.vocab_size, DataError, d.path, ": split ", name, " token ",
                  i, " has id ", s.input_ids[i], ", outside the vocabulary of ", d.vocab_size);
  if (d.task == "features") return;
  DISTILL_CHECK(d.max_length >= 0 && (d.max_length == 0 || s.seq <= d.max_length), DataError, d.path,
                ": attribute max_length = ", d.max_length, " but split ", name, " holds rows of ", s.seq,
                " tokens (expected max_length >= the row length)");
  for (std::int64_t r = 0; r < s.n; ++r) {
    bool any = false;
    for (std::int64_t t = 0; t < s.seq; ++t) {
      const auto k = static_cast<std::size_t>(r * s.seq + t);
      DISTILL_CHECK(s.attention_mask[k] == 0 || s.attention_mask[k] == 1, DataError, d.path, ": split ", name,
                    " example ", r, " has attention_mask ", s.attention_mask[k], " at position ", t,
                    ", expected 0 or 1");
      DISTILL_CHECK(s.token_type_ids[k] >= 0, DataError, d.path, ": split ", name, " example ", r,
                    " has token_type_id ", s.token_type_ids[k], " at position ", t, ", expected >= 0");
      any = any || s.attention_mask[k] == 1;
    }
    DISTILL_CHECK(any, DataError, d.path, ": split ", name, " example ", r,
                  " has an attention_mask of all 0 (no token to attend to)");
  }
}

// Example ids are unique over the whole data set (stores and samplers key on them).
void check_example_ids(const Dataset& d) {
  std::vector<std::pair<std::int64_t, std::string>> ids;
  for (const auto& [name, s] : d.splits)
    for (auto id : s.example_id) ids.emplace_back(id, name);
  std::sort(ids.begin(), ids.end());
  for (std::size_t i = 1; i < ids.size(); ++i)
    DISTILL_CHECK(ids[i].first != ids[i - 1].first, DataError, d.path, ": example_id ", ids[i].first,
                  " appears twice (splits ", ids[i - 1].second, " and ", ids[i].second, "); ids must be unique");
}

// The shape of `name`, checked before anything is read: its rank, element class (integer or
// float), and a byte count a file of `file_bytes` can hold (at most 1024x compression).
h5::DatasetInfo checked_info(const h5::File& f, std::uint64_t file_bytes, const std::string& name, std::size_t rank,
                             bool integer) {
  auto info = f.info(name);
  DISTILL_CHECK(info.shape.size() == rank, DataError, f.path(), ": ", name, " has ", info.shape.size(),
                " dimensions, expected ", rank);
  const bool is_integer =
      info.type == h5::Type::kInt32 || info.type == h5::Type::kInt64 || info.type == h5::Type::kUInt16;
  DISTILL_CHECK(is_integer == integer, DataError, f.path(), ": ", name, " holds ", h5::type_name(info.type),
                " values, expected ", integer ? "integers" : "floats");
  std::uint64_t bytes = 4;
  bool overflow = false;
  for (auto n : info.shape) overflow = overflow || __builtin_mul_overflow(bytes, static_cast<std::uint64_t>(n), &bytes);
  DISTILL_CHECK(!overflow && bytes / 1024 <= file_bytes, DataError, f.path(), ": ", name, " declares shape [",
                info.shape.size() > 0 ? std::to_string(info.shape[0]) : "", info.shape.size() > 1 ? ", " : "",
                info.shape.size() > 1 ? std::to_string(info.shape[1]) : "", "], more than a file of ", file_bytes,
                " bytes can hold (corrupt?)");
  return info;
}

void check_rows(const h5::File& f, const std::string& name, const h5::DatasetInfo& info, std::uint64_t n,
                std::uint64_t width) {
  DISTILL_CHECK(info.shape[0] == n && (info.shape.size() < 2 || info.shape[1] == width), DataError, f.path(), ": ",
                name, " has ", info.shape[0], " rows", info.shape.size() > 1 ? str(" of ", info.shape[1]) : "",
                ", expected ", n, info.shape.size() > 1 ? str(" of ", width) : "");
}
}  // namespace

void write_dataset(const std::string& path, Dataset d) {
  d.path = path;
  for (const auto& [name, s] : d.splits) check_split(d, name, s);
  check_example_ids(d);
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

void check_fits_model(const Dataset& d, const std::string& split, std::int64_t vocab_size, std::int64_t type_vocab,
                      std::int64_t max_positions, const std::string& model) {
  const auto& s = d.split(split);
  if (s.dim > 0 || s.n == 0) return;
  DISTILL_CHECK(s.seq <= max_positions, DataError, d.path, ": split ", split, " holds rows of ", s.seq, " tokens, ",
                model, " takes at most ", max_positions, " positions");
  for (std::int64_t i = 0; i < s.n * s.seq; ++i) {
    const auto k = static_cast<std::size_t>(i);
    DISTILL_CHECK(s.input_ids[k] < vocab_size, DataError, d.path, ": split ", split, " example ", i / s.seq,
                  " has token id ", s.input_ids[k], " at position ", i % s.seq, ", ", model, " has a vocabulary of ",
                  vocab_size);
    DISTILL_CHECK(s.token_type_ids[k] < type_vocab, DataError, d.path, ": split ", split, " example ", i / s.seq,
                  " has token_type_id ", s.token_type_ids[k], " at position ", i % s.seq, ", ", model, " has ",
                  type_vocab, " token types");
  }
}

namespace {
Dataset read_dataset_file(const std::string& path) {
  DISTILL_CHECK(path_exists(path), DataError, "data set ", path, " does not exist (make one with 'distill prepare')");
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
  const auto names = f.attr_string("/", "label_names");
  try {
    d.label_names = nlohmann::json::parse(names).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(str(path, ": attribute label_names = '", names.substr(0, 80), "' is not a JSON list of strings (",
                        e.what(), ")"));
  }
  d.content_hash = f.attr_string("/", "content_hash");
  if (f.has_attr("/", "task")) d.task = f.attr_string("/", "task");
  DISTILL_CHECK(d.task == "sequence" || d.task == "features" || d.task == "mlm", DataError, path, ": task '", d.task,
                "', expected sequence, features or mlm");
  DISTILL_CHECK(d.max_length >= 0 && (d.task == "features" || d.max_length > 0), DataError, path,
                ": attribute max_length = ", d.max_length, ", expected a positive length");
  DISTILL_CHECK(d.vocab_size >= 0, DataError, path, ": attribute vocab_size = ", d.vocab_size,
                ", expected a non-negative count");
  const auto file_bytes = static_cast<std::uint64_t>(std::filesystem::file_size(path));
  for (const char* name : {"train", "dev", "test"}) {
    const std::string g = std::string("/") + name;
    if (!f.exists(g)) continue;
    DataSplit s;
    const bool features = d.task == "features";
    const std::string first = g + (features ? "/features" : "/input_ids");
    const auto info = checked_info(f, file_bytes, first, 2, !features);
    s.n = static_cast<std::int64_t>(info.shape[0]);
    const auto n = info.shape[0];
    if (!features) {
      s.seq = static_cast<std::int64_t>(info.shape[1]);
      for (const char* a : {"/attention_mask", "/token_type_ids"})
        check_rows(f, g + a, checked_info(f, file_bytes, g + a, 2, true), n, info.shape[1]);
      s.input_ids = f.read_vector<std::int32_t>(g + "/input_ids", h5::Type::kInt32);
      s.attention_mask = f.read_vector<std::int32_t>(g + "/attention_mask", h5::Type::kInt32);
      s.token_type_ids = f.read_vector<std::int32_t>(g + "/token_type_ids", h5::Type::kInt32);
    }
    for (const char* a : {"/labels", "/example_id"})
      check_rows(f, g + a, checked_info(f, file_bytes, g + a, 1, true), n, 0);
    s.labels = f.read_vector<std::int64_t>(g + "/labels", h5::Type::kInt64);
    s.example_id = f.read_vector<std::int64_t>(g + "/example_id", h5::Type::kInt64);
    if (features) {
      s.dim = static_cast<std::int64_t>(info.shape[1]);
      s.features = f.read_vector<float>(g + "/features", h5::Type::kFloat32);
    }
    if (d.task == "mlm") {
      check_rows(f, g + "/mlm_labels", checked_info(f, file_bytes, g + "/mlm_labels", 2, true), n, info.shape[1]);
      s.mlm_labels = f.read_vector<std::int32_t>(g + "/mlm_labels", h5::Type::kInt32);
    }
    check_split(d, name, s);
    d.splits[name] = std::move(s);
  }
  check_example_ids(d);
  auto h = dataset_content_hash(d);
  DISTILL_CHECK(h == d.content_hash, DataError, path, " content hash is ", h, " but its attribute says ",
                d.content_hash, " (file altered after prepare?)");
  return d;
}
}  // namespace

Dataset read_dataset(const std::string& path) {
  try {
    return read_dataset_file(path);
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    // HDF5 failures on a damaged file: named as the data set's.
    const std::string m = e.what();
    throw DataError(m.find(path) == std::string::npos ? str(path, ": ", m) : m);
  }
}

}  // namespace distill
