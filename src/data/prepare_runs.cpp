#include "distill/data/prepare_runs.h"

#include <algorithm>

#include "distill/util/error.h"

namespace distill {

std::string write_run(std::vector<RunRow>& rows, long seq_len, const std::string& dir, int part, int k) {
  std::sort(rows.begin(), rows.end(),
            [](const RunRow& a, const RunRow& b) { return a.key != b.key ? a.key < b.key : a.e.line < b.e.line; });
  const auto n = static_cast<hsize_t>(rows.size()), seq = static_cast<hsize_t>(seq_len);
  std::vector<std::int64_t> key, line, index, label;
  std::vector<float> score;
  std::vector<std::int32_t> ids, mask, types;
  for (const auto& r : rows) {
    key.push_back(static_cast<std::int64_t>(r.key));
    line.push_back(r.e.line);
    index.push_back(r.e.id);
    label.push_back(r.e.label);
    score.push_back(r.e.score);
    ids.insert(ids.end(), r.e.enc.ids.begin(), r.e.enc.ids.end());
    mask.insert(mask.end(), r.e.enc.attention_mask.begin(), r.e.enc.attention_mask.end());
    types.insert(types.end(), r.e.enc.type_ids.begin(), r.e.enc.type_ids.end());
  }
  const auto path = str(dir, "/part-", part, "-run-", k, ".h5");
  auto f = h5::File::create(path);
  for (auto [name, v] : {std::pair{"/key", &key}, {"/line", &line}, {"/index", &index}, {"/label", &label}})
    f.write(name, h5::Type::kInt64, {n}, v->data());  // contiguous: a scratch file read back once
  f.write("/score", h5::Type::kFloat32, {n}, score.data());
  for (auto [name, v] : {std::pair{"/input_ids", &ids}, {"/attention_mask", &mask}, {"/token_type_ids", &types}})
    f.write(name, h5::Type::kInt32, {n, seq}, v->data());
  f.flush();
  rows.clear();
  return path;
}

RunReader::RunReader(const std::string& path, int part, long seq, hsize_t block)
    : path_(path), part_(part), seq_(seq), block_(block) {
  n_ = h5::File::open(path_).info("/key").shape[0];
  refill();
}

Example RunReader::take() {
  const auto i = at_ - first_;
  Example e{index_[i], label_[i], {}, static_cast<long>(line_[i]), score_[i]};
  const auto cells = [&](const std::vector<std::int32_t>& v) {
    return std::vector<std::int32_t>(v.begin() + static_cast<std::ptrdiff_t>(i * seq_),
                                     v.begin() + static_cast<std::ptrdiff_t>((i + 1) * seq_));
  };
  e.enc.ids = cells(ids_);
  e.enc.attention_mask = cells(mask_);
  e.enc.type_ids = cells(types_);
  if (++at_ < n_ && at_ - first_ >= key_.size()) refill();
  return e;
}

void RunReader::refill() {
  first_ = at_;
  const auto end = std::min(n_, first_ + block_), m = end - first_;
  if (m == 0) return;
  const auto f_ = h5::File::open(path_);
  for (auto [name, v] : {std::pair{"/key", &key_}, {"/line", &line_}, {"/index", &index_}, {"/label", &label_}}) {
    v->resize(m);
    f_.read_rows(name, h5::Type::kInt64, first_, end, v->data());
  }
  score_.resize(m);
  f_.read_rows("/score", h5::Type::kFloat32, first_, end, score_.data());
  for (auto [name, v] : {std::pair{"/input_ids", &ids_}, {"/attention_mask", &mask_}, {"/token_type_ids", &types_}}) {
    v->resize(m * static_cast<hsize_t>(seq_));
    f_.read_rows(name, h5::Type::kInt32, first_, end, v->data());
  }
}

}  // namespace distill
