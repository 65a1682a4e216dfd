#include "distill/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/data/dataset_writer.h"
#include "distill/data/split_file.h"
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

DataSplit DataSplit::select(const std::vector<std::int64_t>& rows) const {
  DataSplit out;
  out.seq = seq;
  out.dim = dim;
  out.max_input_id = max_input_id;
  out.max_token_type = max_token_type;
  if (file) {
    file->select(rows, out);
    return out;
  }
  for (auto r : rows) {
    DISTILL_CHECK(r >= 0 && r < n, DataError, "row ", r, " out of range [0, ", n, ")");
    append_row(*this, r, out);
  }
  return out;
}

DataSplit DataSplit::all() const {
  if (!file) return *this;
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) rows[i] = i;
  auto out = select(rows);
  out.n = n;
  return out;
}

std::int64_t DataSplit::labeled_rows() const {
  if (labeled >= 0) return labeled;
  if (file) return n;
  std::int64_t k = 0;
  for (auto y : labels) k += y != kIgnoreLabel;
  return k;
}

std::int64_t DataSplit::block_rows() const { return file ? file->block_rows() : kDatasetChunkRows; }

void DataSplit::scan(const std::function<void(const DataSplit&, std::int64_t)>& fn) const {
  if (n == 0) {  // one empty block: an empty split is still a split
    DataSplit empty;
    empty.seq = seq;
    empty.dim = dim;
    fn(empty, 0);
    return;
  }
  const auto block = block_rows();
  if (!file && n <= block) return fn(*this, 0);  // one block: the split itself (its checks see every array)
  for (std::int64_t first = 0; first < n; first += block) {
    if (file) {
      fn(file->read_block(first / block), first);
      continue;
    }
    std::vector<std::int64_t> rows;
    for (auto r = first; r < std::min(n, first + block); ++r) rows.push_back(r);
    fn(select(rows), first);
  }
}

// Content hash -------------------------------------------------------------------------------

namespace {

// FNV-1a over 64-bit words, fed any number of bytes at a time.
class WordHasher {
 public:
  void update(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (bytes > 0 && pending_ > 0) take(p, bytes);
    std::uint64_t h = h_;
    for (; bytes >= 8; p += 8, bytes -= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    h_ = h;
    while (bytes > 0) take(p, bytes);
  }
  std::uint64_t value() const {
    if (pending_ == 0) return h_;
    std::uint64_t w = 0;
    std::memcpy(&w, buf_, pending_);
    return (h_ ^ w) * 1099511628211ull;
  }

 private:
  void take(const unsigned char*& p, std::size_t& bytes) {
    buf_[pending_++] = *p++;
    --bytes;
    if (pending_ < 8) return;
    std::uint64_t w;
    std::memcpy(&w, buf_, 8);
    h_ = (h_ ^ w) * 1099511628211ull;
    pending_ = 0;
  }
  std::uint64_t h_ = 1469598103934665603ull;
  unsigned char buf_[8] = {};
  std::size_t pending_ = 0;
};

}  // namespace

struct ContentHasher::Split {
  std::int64_t n = 0, seq = 0, dim = 0;
  WordHasher input_ids, attention_mask, token_type_ids, labels, example_id, features, mlm_labels, scores;
};

void ContentHasher::add(const std::string& name, const DataSplit& rows) {
  auto& p = splits_[name];
  if (!p) p = std::make_shared<Split>();
  auto& s = *p;
  s.n += rows.n;
  s.seq = rows.seq;
  s.dim = rows.dim;
  s.input_ids.update(rows.input_ids.data(), rows.input_ids.size() * 4);
  s.attention_mask.update(rows.attention_mask.data(), rows.attention_mask.size() * 4);
  s.token_type_ids.update(rows.token_type_ids.data(), rows.token_type_ids.size() * 4);
  s.labels.update(rows.labels.data(), rows.labels.size() * 8);
  s.example_id.update(rows.example_id.data(), rows.example_id.size() * 8);
  s.features.update(rows.features.data(), rows.features.size() * 4);
  s.mlm_labels.update(rows.mlm_labels.data(), rows.mlm_labels.size() * 4);
  s.scores.update(rows.scores.data(), rows.scores.size() * 4);
}

std::string ContentHasher::hex(const std::vector<std::string>& label_names) const {
  Hasher h;
  for (const auto& [name, p] : splits_) {
    const auto& s = *p;
    h.update(name).update_pod(s.n).update_pod(s.seq);
    for (const WordHasher* a : {&s.input_ids, &s.attention_mask, &s.token_type_ids, &s.labels, &s.example_id})
      h.update_pod(a->value());
    if (task_ == "features") h.update_pod(s.dim).update_pod(s.features.value());
    if (task_ == "mlm") h.update_pod(s.mlm_labels.value());
    if (regression_) h.update_pod(s.scores.value());
  }
  h.update(task_);
  if (regression_) h.update("regression");
  h.update(nlohmann::json(label_names).dump());
  return h.hex();
}

std::string dataset_content_hash(const Dataset& d) {
  ContentHasher h(d.task, d.regression);
  for (const auto& [name, s] : d.splits) s.scan([&](const DataSplit& b, std::int64_t) { h.add(name, b); });
  return h.hex(d.label_names);
}

// Checks -------------------------------------------------------------------------------------

namespace {

// A regression split: one score per row, finite where labeled and NaN where not (Note [regression]).
void check_scores(const Dataset& d, const std::string& name, const DataSplit& s, std::int64_t first) {
  DISTILL_CHECK(d.task != "mlm" && d.num_labels() == 1, DataError, d.path, ": a regression data set has one label name "
                "and task sequence or features, not ", d.num_labels(), " names and task ", d.task);
  DISTILL_CHECK(s.scores.size() == static_cast<std::size_t>(s.n), DataError, d.path, ": split ", name, " holds ",
                s.scores.size(), " scores for ", s.n, " rows");
  for (std::size_t i = 0; i < s.scores.size(); ++i) {
    const bool labeled = s.labels[i] != kIgnoreLabel;
    DISTILL_CHECK(labeled == std::isfinite(s.scores[i]), DataError, d.path, ": split ", name, " example ",
                  first + static_cast<std::int64_t>(i), " has score ", s.scores[i],
                  labeled ? ", expected a finite target" : ", expected NaN (the row is unlabeled)");
  }
}

}  // namespace

void check_split_rows(const Dataset& d, const std::string& name, const DataSplit& s, std::int64_t first) {
  DISTILL_CHECK(d.task == "sequence" || d.task == "features" || d.task == "mlm", DataError, d.path, ": task '", d.task,
                "', expected sequence, features or mlm");
  if (d.task == "features") {
    DISTILL_CHECK(s.dim > 0 && s.seq == 0 && s.features.size() == static_cast<std::size_t>(s.n * s.dim), DataError,
                  d.path, ": split ", name, " features disagree with n = ", s.n, ", dim = ", s.dim);
    for (std::size_t i = 0; i < s.features.size(); ++i)
      DISTILL_CHECK(std::isfinite(s.features[i]), DataError, d.path, ": split ", name, " example ",
                    first + static_cast<std::int64_t>(i / static_cast<std::size_t>(s.dim)), " feature ",
                    i % static_cast<std::size_t>(s.dim), " is not finite");
  }
  if (d.task == "mlm") {
    DISTILL_CHECK(s.mlm_labels.size() == static_cast<std::size_t>(s.n * s.seq), DataError, d.path, ": split ", name,
                  " mlm_labels disagree with n = ", s.n, ", seq = ", s.seq);
    for (std::size_t i = 0; i < s.mlm_labels.size(); ++i)
      DISTILL_CHECK(s.mlm_labels[i] == kIgnoreLabel || (s.mlm_labels[i] >= 0 && s.mlm_labels[i] < d.vocab_size),
                    DataError, d.path, ": split ", name, " mlm label ", first * s.seq + static_cast<std::int64_t>(i),
                    " is ", s.mlm_labels[i], ", expected -100 or 0..", d.vocab_size - 1);
  }
  const auto cells = static_cast<std::size_t>(s.n * s.seq);
  DISTILL_CHECK(s.input_ids.size() == cells && s.attention_mask.size() == cells && s.token_type_ids.size() == cells &&
                    s.labels.size() == static_cast<std::size_t>(s.n) && s.example_id.size() == s.labels.size(),
                DataError, d.path, ": split ", name, " arrays disagree with n = ", s.n, ", seq = ", s.seq);
  for (std::size_t i = 0; i < s.labels.size() && d.task != "mlm"; ++i)
    DISTILL_CHECK((s.labels[i] >= 0 && s.labels[i] < d.num_labels()) || s.labels[i] == kIgnoreLabel, DataError, d.path,
                  ": split ", name, " example ", first + static_cast<std::int64_t>(i), " has label ", s.labels[i],
                  ", expected 0..", d.num_labels() - 1, " (or ", kIgnoreLabel, ": unlabeled)");
  if (d.regression) check_scores(d, name, s, first);
  for (std::size_t i = 0; i < cells; ++i)
    DISTILL_CHECK(s.input_ids[i] >= 0 && s.input_ids[i] < d.vocab_size, DataError, d.path, ": split ", name, " token ",
                  first * s.seq + static_cast<std::int64_t>(i), " has id ", s.input_ids[i],
                  ", outside the vocabulary of ", d.vocab_size);
  if (d.task == "features") return;
  DISTILL_CHECK(d.max_length >= 0 && (d.max_length == 0 || s.seq <= d.max_length), DataError, d.path,
                ": attribute max_length = ", d.max_length, " but split ", name, " holds rows of ", s.seq,
                " tokens (expected max_length >= the row length)");
  for (std::int64_t r = 0; r < s.n; ++r) {
    bool any = false;
    for (std::int64_t t = 0; t < s.seq; ++t) {
      const auto k = static_cast<std::size_t>(r * s.seq + t);
      DISTILL_CHECK(s.attention_mask[k] == 0 || s.attention_mask[k] == 1, DataError, d.path, ": split ", name,
                    " example ", first + r, " has attention_mask ", s.attention_mask[k], " at position ", t,
                    ", expected 0 or 1");
      DISTILL_CHECK(s.token_type_ids[k] >= 0, DataError, d.path, ": split ", name, " example ", first + r,
                    " has token_type_id ", s.token_type_ids[k], " at position ", t, ", expected >= 0");
      DISTILL_CHECK(s.max_input_id < 0 || s.input_ids[k] <= s.max_input_id, DataError, d.path, ": split ", name,
                    " example ", first + r, " has token id ", s.input_ids[k], " above the split's max_input_id ",
                    s.max_input_id, " (file altered after prepare?)");
      DISTILL_CHECK(s.max_token_type < 0 || s.token_type_ids[k] <= s.max_token_type, DataError, d.path, ": split ",
                    name, " example ", first + r, " has token_type_id ", s.token_type_ids[k],
                    " above the split's max_token_type ", s.max_token_type, " (file altered after prepare?)");
      any = any || s.attention_mask[k] == 1;
    }
    DISTILL_CHECK(any, DataError, d.path, ": split ", name, " example ", first + r,
                  " has an attention_mask of all 0 (no token to attend to)");
  }
}

// Example ids are unique over the whole data set (stores and samplers key on them); `ids` by split.
// Shared with the dataset writer.
void check_unique_example_ids(const std::string& path, std::map<std::string, std::vector<std::int64_t>>& ids) {
  std::vector<std::pair<std::int64_t, const std::string*>> all;
  for (auto& [name, v] : ids) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 1; i < v.size(); ++i)
      DISTILL_CHECK(v[i] != v[i - 1], DataError, path, ": example_id ", v[i], " appears twice (splits ", name, " and ",
                    name, "); ids must be unique");
  }
  // Across splits: a k-way merge of the sorted lists.
  std::vector<std::pair<const std::string*, const std::vector<std::int64_t>*>> lists;
  for (const auto& [name, v] : ids) lists.push_back({&name, &v});
  std::vector<std::size_t> at(lists.size(), 0);
  std::int64_t last = 0;
  const std::string* last_split = nullptr;
  while (true) {
    std::size_t best = lists.size();
    for (std::size_t k = 0; k < lists.size(); ++k)
      if (at[k] < lists[k].second->size() &&
          (best == lists.size() || (*lists[k].second)[at[k]] < (*lists[best].second)[at[best]]))
        best = k;
    if (best == lists.size()) return;
    const auto id = (*lists[best].second)[at[best]++];
    DISTILL_CHECK(!last_split || id != last, DataError, path, ": example_id ", id, " appears twice (splits ",
                  *last_split, " and ", *lists[best].first, "); ids must be unique");
    last = id;
    last_split = lists[best].first;
  }
}

namespace {

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

// The largest token id and token type of `s`, read block by block when not recorded.
std::pair<std::int64_t, std::int64_t> token_maxima(const DataSplit& s) {
  if (s.max_input_id >= 0 && s.max_token_type >= 0) return {s.max_input_id, s.max_token_type};
  std::int64_t ids = -1, types = -1;
  s.scan([&](const DataSplit& b, std::int64_t) {
    for (auto v : b.input_ids) ids = std::max<std::int64_t>(ids, v);
    for (auto v : b.token_type_ids) types = std::max<std::int64_t>(types, v);
  });
  return {ids, types};
}

}  // namespace

void check_dataset_content(const Dataset& d) {
  ContentHasher h(d.task, d.regression);
  std::map<std::string, std::vector<std::int64_t>> ids;
  for (const auto& [name, s] : d.splits) {
    auto& v = ids[name];
    std::int64_t labeled = 0;
    s.scan([&](const DataSplit& b, std::int64_t first) {
      if (!s.file) check_split_rows(d, name, b, first);  // blocks read from disk are checked as read
      h.add(name, b);
      v.insert(v.end(), b.example_id.begin(), b.example_id.end());
      for (auto y : b.labels) labeled += y != kIgnoreLabel;
    });
    DISTILL_CHECK(d.task == "mlm" || labeled == (s.labeled >= 0 ? s.labeled : s.n), DataError, d.path, ": split ", name,
                  " has ", labeled, " labeled rows but its attribute labeled says ", s.labeled >= 0 ? s.labeled : s.n,
                  " (file altered after prepare?)");
  }
  check_unique_example_ids(d.path, ids);
  const auto hash = h.hex(d.label_names);
  DISTILL_CHECK(hash == d.content_hash, DataError, d.path, " content hash is ", hash, " but its attribute says ",
                d.content_hash, " (file altered after prepare?)");
}

void check_fits_model(const Dataset& d, const std::string& split, std::int64_t vocab_size, std::int64_t type_vocab,
                      std::int64_t max_positions, const std::string& model) {
  const auto& s = d.split(split);
  if (s.dim > 0 || s.n == 0) return;
  DISTILL_CHECK(s.seq <= max_positions, DataError, d.path, ": split ", split, " holds rows of ", s.seq, " tokens, ",
                model, " takes at most ", max_positions, " positions");
  const auto [max_id, max_type] = token_maxima(s);
  if (max_id < vocab_size && max_type < type_vocab) return;
  // Name the first example past a limit.
  s.scan([&](const DataSplit& b, std::int64_t first) {
    for (std::int64_t i = 0; i < b.n * b.seq; ++i) {
      const auto k = static_cast<std::size_t>(i);
      DISTILL_CHECK(b.input_ids[k] < vocab_size, DataError, d.path, ": split ", split, " example ", first + i / b.seq,
                    " has token id ", b.input_ids[k], " at position ", i % b.seq, ", ", model, " has a vocabulary of ",
                    vocab_size);
      DISTILL_CHECK(b.token_type_ids[k] < type_vocab, DataError, d.path, ": split ", split, " example ",
                    first + i / b.seq, " has token_type_id ", b.token_type_ids[k], " at position ", i % b.seq, ", ",
                    model, " has ", type_vocab, " token types");
    }
  });
  throw DataError(str(d.path, ": split ", split, " records token ids up to ", max_id, " and token types up to ",
                      max_type, "; ", model, " has a vocabulary of ", vocab_size, " and ", type_vocab, " token types"));
}

std::string write_dataset(const std::string& path, const Dataset& d) {
  DatasetWriter w(path, d);
  for (const auto& [name, s] : d.splits) s.scan([&](const DataSplit& b, std::int64_t) { w.append(name, b); });
  return w.finish();
}

namespace {
Dataset read_dataset_file(const std::string& path, std::uint64_t full_check_bytes) {
  DISTILL_CHECK(path_exists(path), DataError, "data set ", path, " does not exist (make one with 'distill prepare')");
  auto f = h5::File::open(path);
  Dataset d;
  d.path = path;
  DISTILL_CHECK(f.has_attr("/", "schema_version"), DataError, path, " is not a distill data set (no schema_version)");
  auto version = f.attr_int("/", "schema_version");
  DISTILL_CHECK(version == kDatasetSchemaVersion || version == kRegressionSchemaVersion, DataError, path,
                " has schema version ", version, ", this distill reads ", kDatasetSchemaVersion, " and ",
                kRegressionSchemaVersion, " (regression); rerun 'distill prepare'");
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
  if (f.has_attr("/", "regression")) d.regression = f.attr_int("/", "regression") != 0;
  DISTILL_CHECK(d.regression == (version == kRegressionSchemaVersion), DataError, path, ": schema version ", version,
                d.regression ? " with attribute regression = 1 (expected version 3; rerun 'distill prepare')"
                             : " without attribute regression = 1 (version 3 is for regression data sets)");
  DISTILL_CHECK(d.task == "sequence" || d.task == "features" || d.task == "mlm", DataError, path, ": task '", d.task,
                "', expected sequence, features or mlm");
  DISTILL_CHECK(d.max_length >= 0 && (d.task == "features" || d.max_length > 0), DataError, path,
                ": attribute max_length = ", d.max_length, ", expected a positive length");
  DISTILL_CHECK(d.vocab_size >= 0, DataError, path, ": attribute vocab_size = ", d.vocab_size,
                ", expected a non-negative count");
  const auto file_bytes = static_cast<std::uint64_t>(std::filesystem::file_size(path));
  const bool features = d.task == "features";
  for (const char* name : {"train", "dev", "test"}) {
    const std::string g = std::string("/") + name;
    if (!f.exists(g)) continue;
    DataSplit s;
    const std::string first = g + (features ? "/features" : "/input_ids");
    const auto info = checked_info(f, file_bytes, first, 2, !features);
    s.n = static_cast<std::int64_t>(info.shape[0]);
    const auto n = info.shape[0];
    std::vector<std::string> arrays = {"/labels", "/example_id"};
    if (features) s.dim = static_cast<std::int64_t>(info.shape[1]);
    if (!features) s.seq = static_cast<std::int64_t>(info.shape[1]);
    if (!features) arrays.insert(arrays.end(), {"/attention_mask", "/token_type_ids"});
    if (d.task == "mlm") arrays.push_back("/mlm_labels");
    for (const auto& a : arrays) {
      const bool matrix = a != "/labels" && a != "/example_id";
      check_rows(f, g + a, checked_info(f, file_bytes, g + a, matrix ? 2 : 1, true), n, matrix ? info.shape[1] : 0);
    }
    if (d.regression) check_rows(f, g + "/scores", checked_info(f, file_bytes, g + "/scores", 1, false), n, 0);
    if (f.has_attr(g, "max_input_id")) s.max_input_id = f.attr_int(g, "max_input_id");
    if (f.has_attr(g, "max_token_type")) s.max_token_type = f.attr_int(g, "max_token_type");
    if (f.has_attr(g, "labeled")) s.labeled = f.attr_int(g, "labeled");
    DISTILL_CHECK(s.labeled <= s.n, DataError, path, ": split ", name, " attribute labeled = ", s.labeled,
                  " exceeds its ", s.n, " rows");
    const auto block = info.chunk.empty() ? kDatasetChunkRows : static_cast<std::int64_t>(info.chunk[0]);
    s.file = std::make_shared<SplitFile>(d, name, s, std::max<std::int64_t>(1, block));
    d.splits[name] = std::move(s);
  }
  if (file_bytes <= full_check_bytes) check_dataset_content(d);
  return d;
}
}  // namespace

Dataset read_dataset(const std::string& path, std::uint64_t full_check_bytes) {
  try {
    return read_dataset_file(path, full_check_bytes);
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    // HDF5 failures on a damaged file: named as the data set's.
    const std::string m = e.what();
    throw DataError(m.find(path) == std::string::npos ? str(path, ": ", m) : m);
  }
}

}  // namespace distill
