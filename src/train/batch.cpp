#include "distill/train/batch.h"

#include <torch/torch.h>

#include <cstring>

namespace distill {

Batch make_batch(const TokenSplit& s, const std::vector<std::int64_t>& rows, const StoreReader* store) {
  const auto b = static_cast<std::int64_t>(rows.size());
  auto ids = torch::empty({b, s.seq}, torch::kInt32);
  auto mask = torch::empty({b, s.seq}, torch::kInt32);
  auto types = torch::empty({b, s.seq}, torch::kInt32);
  auto labels = torch::empty({b}, torch::kInt64);
  for (std::int64_t i = 0; i < b; ++i) {
    const auto off = rows[i] * s.seq;
    std::memcpy(ids.data_ptr<std::int32_t>() + i * s.seq, &s.input_ids[off], s.seq * 4);
    std::memcpy(mask.data_ptr<std::int32_t>() + i * s.seq, &s.attention_mask[off], s.seq * 4);
    std::memcpy(types.data_ptr<std::int32_t>() + i * s.seq, &s.token_type_ids[off], s.seq * 4);
    labels.data_ptr<std::int64_t>()[i] = s.labels[rows[i]];
  }
  Batch out;
  out.inputs = {ids.to(torch::kInt64), mask.to(torch::kInt64), types.to(torch::kInt64)};
  out.labels = labels;
  if (store) {
    const auto c = store->num_labels();
    out.teacher_logits = torch::empty({b, c}, torch::kFloat32);
    for (std::int64_t i = 0; i < b; ++i)
      std::memcpy(out.teacher_logits.data_ptr<float>() + i * c, store->row(rows[i]), c * sizeof(float));
  }
  return out;
}

}  // namespace distill
