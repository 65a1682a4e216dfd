#include "distill/data/split_file.h"

#include <algorithm>

#include "distill/util/error.h"

namespace distill {

namespace {

template <typename T>
void append_cells(const std::vector<T>& src, std::int64_t width, std::int64_t r, std::vector<T>& out) {
  if (src.empty()) return;
  DISTILL_CHECK(static_cast<std::int64_t>(src.size()) >= (r + 1) * width, DataError, "an array of ", src.size(),
                " values has no row ", r, " of ", width, " (arrays of a split disagree in length)");
  out.insert(out.end(), src.begin() + r * width, src.begin() + (r + 1) * width);
}

}  // namespace

void append_row(const DataSplit& src, std::int64_t r, DataSplit& out) {
  append_cells(src.input_ids, src.seq, r, out.input_ids);
  append_cells(src.attention_mask, src.seq, r, out.attention_mask);
  append_cells(src.token_type_ids, src.seq, r, out.token_type_ids);
  append_cells(src.mlm_labels, src.seq, r, out.mlm_labels);
  append_cells(src.features, src.dim, r, out.features);
  append_cells(src.scores, 1, r, out.scores);
  append_cells(src.labels, 1, r, out.labels);
  append_cells(src.example_id, 1, r, out.example_id);
  ++out.n;
}

SplitFile::SplitFile(const Dataset& header, std::string split, const DataSplit& shape, std::int64_t block_rows)
    : header_(header), split_(std::move(split)), block_(block_rows) {
  header_.splits.clear();
  shape_.n = shape.n;
  shape_.seq = shape.seq;
  shape_.dim = shape.dim;
  shape_.max_input_id = shape.max_input_id;
  shape_.max_token_type = shape.max_token_type;
  file_ = std::make_unique<h5::File>(h5::File::open(header_.path));
}

void SplitFile::set_cache_blocks(std::size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_blocks_ = std::max<std::size_t>(1, n);
  while (cache_.size() > cache_blocks_) cache_.pop_back();
}

std::int64_t SplitFile::rows_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_read_;
}

DataSplit SplitFile::read_block(std::int64_t b) const {
  const std::int64_t lo = b * block_, hi = std::min(shape_.n, lo + block_);
  DISTILL_CHECK(b >= 0 && lo < shape_.n, DataError, header_.path, ": split ", split_, " has no block ", b);
  DataSplit s;
  s.n = hi - lo;
  s.seq = shape_.seq;
  s.dim = shape_.dim;
  s.max_input_id = shape_.max_input_id;
  s.max_token_type = shape_.max_token_type;
  const std::string g = "/" + split_ + "/";
  const auto begin = static_cast<hsize_t>(lo), end = static_cast<hsize_t>(hi);
  std::string array;
  try {
    auto read = [&](const char* name, auto& v, std::int64_t width, h5::Type t) {
      array = name;
      v.resize(static_cast<std::size_t>(s.n * width));
      file_->read_rows(g + name, t, begin, end, v.data());
    };
    if (header_.task == "features") {
      read("features", s.features, s.dim, h5::Type::kFloat32);
    } else {
      read("input_ids", s.input_ids, s.seq, h5::Type::kInt32);
      read("attention_mask", s.attention_mask, s.seq, h5::Type::kInt32);
      read("token_type_ids", s.token_type_ids, s.seq, h5::Type::kInt32);
    }
    if (header_.task == "mlm") read("mlm_labels", s.mlm_labels, s.seq, h5::Type::kInt32);
    read("labels", s.labels, 1, h5::Type::kInt64);
    read("example_id", s.example_id, 1, h5::Type::kInt64);
    if (header_.regression) read("scores", s.scores, 1, h5::Type::kFloat32);
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    throw DataError(str(header_.path, ": split ", split_, " rows [", lo, ", ", hi, ") of ", array,
                        " cannot be read (corrupt chunk or truncated file): ", e.what()));
  }
  check_split_rows(header_, split_, s, lo);
  return s;
}

std::shared_ptr<const DataSplit> SplitFile::block(std::int64_t b) const {
  for (auto it = cache_.begin(); it != cache_.end(); ++it)
    if (it->first == b) {
      cache_.splice(cache_.begin(), cache_, it);
      return cache_.front().second;
    }
  auto blk = std::make_shared<const DataSplit>(read_block(b));
  rows_read_ += blk->n;
  cache_.emplace_front(b, blk);
  while (cache_.size() > cache_blocks_) cache_.pop_back();
  return blk;
}

void SplitFile::select(const std::vector<std::int64_t>& rows, DataSplit& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto r : rows) {
    DISTILL_CHECK(r >= 0 && r < shape_.n, DataError, header_.path, ": split ", split_, " row ", r, " out of range [0, ",
                  shape_.n, ")");
    const auto blk = block(r / block_);
    append_row(*blk, r % block_, out);
  }
}

}  // namespace distill
