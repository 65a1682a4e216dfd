#include "distill/data/dataset_writer.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

DatasetWriter::DatasetWriter(std::string path, const Dataset& header, bool check_ids)
    : path_(std::move(path)), header_(header), hash_(header.task, header.regression), check_ids_(check_ids) {
  header_.splits.clear();
  header_.path = path_;
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  file_ = std::make_unique<h5::File>(h5::File::create(tmp_));
}

DatasetWriter::~DatasetWriter() {
  if (done_) return;
  file_.reset();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

void DatasetWriter::append(const std::string& name, const DataSplit& rows) {
  DISTILL_CHECK(!done_, Error, "dataset writer for ", path_, " already finished");
  DISTILL_CHECK(name == "train" || name == "dev" || name == "test", DataError, path_, ": split '", name,
                "', expected train, dev or test");
  const bool features = header_.task == "features";
  const std::string g = "/" + name;
  auto it = splits_.find(name);
  if (it == splits_.end()) {
    Split s;
    s.seq = rows.seq;
    s.dim = rows.dim;
    file_->create_group(g);
    const auto seq = static_cast<hsize_t>(rows.seq);
    const auto chunk = static_cast<hsize_t>(kDatasetChunkRows);
    if (!features) {
      for (const char* a : {"/input_ids", "/attention_mask", "/token_type_ids"})
        file_->create_rows(g + a, h5::Type::kInt32, {seq}, chunk);
    } else {
      file_->create_rows(g + "/features", h5::Type::kFloat32, {static_cast<hsize_t>(rows.dim)}, chunk);
    }
    file_->create_rows(g + "/labels", h5::Type::kInt64, {}, chunk);
    file_->create_rows(g + "/example_id", h5::Type::kInt64, {}, chunk);
    if (header_.task == "mlm") file_->create_rows(g + "/mlm_labels", h5::Type::kInt32, {seq}, chunk);
    if (header_.regression) file_->create_rows(g + "/scores", h5::Type::kFloat32, {}, chunk);
    it = splits_.emplace(name, s).first;
  }
  auto& s = it->second;
  DISTILL_CHECK(rows.seq == s.seq && rows.dim == s.dim, DataError, path_, ": split ", name, " got rows of ", rows.seq,
                " tokens / ", rows.dim, " features after ", s.seq, " / ", s.dim);
  check_split_rows(header_, name, rows, s.n);
  const auto n = static_cast<hsize_t>(rows.n);
  if (!features) {
    file_->append_rows(g + "/input_ids", h5::Type::kInt32, n, rows.input_ids.data());
    file_->append_rows(g + "/attention_mask", h5::Type::kInt32, n, rows.attention_mask.data());
    file_->append_rows(g + "/token_type_ids", h5::Type::kInt32, n, rows.token_type_ids.data());
  } else {
    file_->append_rows(g + "/features", h5::Type::kFloat32, n, rows.features.data());
  }
  file_->append_rows(g + "/labels", h5::Type::kInt64, n, rows.labels.data());
  file_->append_rows(g + "/example_id", h5::Type::kInt64, n, rows.example_id.data());
  if (header_.task == "mlm") file_->append_rows(g + "/mlm_labels", h5::Type::kInt32, n, rows.mlm_labels.data());
  if (header_.regression) file_->append_rows(g + "/scores", h5::Type::kFloat32, n, rows.scores.data());
  for (auto v : rows.input_ids) s.max_input_id = std::max<std::int64_t>(s.max_input_id, v);
  for (auto v : rows.token_type_ids) s.max_token_type = std::max<std::int64_t>(s.max_token_type, v);
  s.n += rows.n;
  for (auto y : rows.labels) s.labeled += y != kIgnoreLabel;
  if (check_ids_) ids_[name].insert(ids_[name].end(), rows.example_id.begin(), rows.example_id.end());
  hash_.add(name, rows);
}

std::string DatasetWriter::finish() {
  DISTILL_CHECK(!done_, Error, "dataset writer for ", path_, " already finished");
  check_unique_example_ids(path_, ids_);
  ids_.clear();
  const auto hash = hash_.hex(header_.label_names);
  for (const auto& [name, s] : splits_) {
    if (header_.task != "mlm") file_->set_attr("/" + name, "labeled", s.labeled);
    if (header_.task == "features") continue;
    file_->set_attr("/" + name, "max_input_id", s.max_input_id);
    file_->set_attr("/" + name, "max_token_type", s.max_token_type);
  }
  if (header_.task != "sequence") file_->set_attr("/", "task", header_.task);
  if (header_.regression) file_->set_attr("/", "regression", std::int64_t{1});
  file_->set_attr("/", "schema_version", header_.regression ? kRegressionSchemaVersion : kDatasetSchemaVersion);
  file_->set_attr("/", "vocab_size", header_.vocab_size);
  file_->set_attr("/", "vocab_hash", header_.vocab_hash);
  file_->set_attr("/", "max_length", header_.max_length);
  file_->set_attr("/", "label_names", nlohmann::json(header_.label_names).dump());
  file_->set_attr("/", "content_hash", hash);
  for (const auto& [name, value] : extra_attrs_) file_->set_attr("/", name, value);
  file_->flush();
  file_.reset();
  fsync_path(tmp_);
  rename_durable(tmp_, path_);
  done_ = true;
  return hash;
}

}  // namespace distill
