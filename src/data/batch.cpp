#include "distill/data/batch.h"

#include <torch/torch.h>

#include <cstring>

#include "distill/util/error.h"

namespace distill {

namespace {

// A [rows, width] tensor of dtype `d` over a copy of `src`.
template <typename T>
torch::Tensor rows_tensor(const std::vector<T>& src, std::int64_t rows, std::int64_t width, torch::Dtype d) {
  auto out = torch::empty({rows, width}, d);
  if (!src.empty()) std::memcpy(out.data_ptr<T>(), src.data(), src.size() * sizeof(T));
  return out;
}

void add_store_layers(Batch& out, const StoreReader& store, const std::vector<std::int64_t>& rows) {
  const auto& m = store.manifest().meta;
  const auto b = static_cast<std::int64_t>(rows.size());
  out.teacher_layers.hidden.resize(m.teacher_layers + 1);
  out.teacher_layers.attentions.resize(m.teacher_layers);
  for (long l : m.hidden_layers) {
    auto t = torch::empty({b, m.seq, m.hidden_size});
    for (std::int64_t i = 0; i < b; ++i) store.read_hidden(l, rows[i], t[i].data_ptr<float>());
    out.teacher_layers.hidden[l] = t;
  }
  for (long l : m.attention_layers) {
    auto t = torch::empty({b, m.heads, m.seq, m.seq});
    for (std::int64_t i = 0; i < b; ++i) store.read_attention(l, rows[i], t[i].data_ptr<float>());
    out.teacher_layers.attentions[l - 1] = t;
  }
  if (!m.qkv_layers.empty()) out.teacher_layers.qkv.resize(m.teacher_layers);
  for (long l : m.qkv_layers) {
    auto part = [&](const char* name) {
      auto t = torch::empty({b, m.seq, m.hidden_size});
      for (std::int64_t i = 0; i < b; ++i) store.read_qkv(name, l, rows[i], t[i].data_ptr<float>());
      return t;
    };
    out.teacher_layers.qkv[l - 1] = {part("query"), part("key"), part("value")};
  }
}

}  // namespace

torch::Tensor store_logits(const StoreReader& store, const std::vector<std::int64_t>& rows) {
  const auto b = static_cast<std::int64_t>(rows.size());
  const auto c = store.num_labels();
  auto out = torch::empty({b, c}, torch::kFloat32);
  for (std::int64_t i = 0; i < b; ++i) store.read_logits(rows[i], out.data_ptr<float>() + i * c);
  return out;
}

void to_device(Batch& b, const c10::Device& d) {
  b.inputs = to_device(b.inputs, d);
  for (auto* t : {&b.labels, &b.teacher_logits, &b.topk_values, &b.topk_indices, &b.topk_lse}) *t = to_device(*t, d);
  for (auto& t : b.teacher_layers.hidden) t = to_device(t, d);
  for (auto& t : b.teacher_layers.attentions) t = to_device(t, d);
  for (auto& q : b.teacher_layers.qkv) q = {to_device(q.query, d), to_device(q.key, d), to_device(q.value, d)};
}

Batch make_batch(const DataSplit& split, const std::vector<std::int64_t>& rows, const StoreReader* store,
                 bool want_layers) {
  const auto b = static_cast<std::int64_t>(rows.size());
  const DataSplit s = split.select(rows);
  Batch out;
  out.labels = rows_tensor(s.labels, b, 1, torch::kInt64).view({b});
  if (!s.scores.empty()) out.labels = rows_tensor(s.scores, b, 1, torch::kFloat32).view({b});
  if (s.dim > 0) {
    out.inputs.features = rows_tensor(s.features, b, s.dim, torch::kFloat32);
  } else {
    out.inputs.input_ids = rows_tensor(s.input_ids, b, s.seq, torch::kInt32).to(torch::kInt64);
    out.inputs.attention_mask = rows_tensor(s.attention_mask, b, s.seq, torch::kInt32).to(torch::kInt64);
    out.inputs.token_type_ids = rows_tensor(s.token_type_ids, b, s.seq, torch::kInt32).to(torch::kInt64);
  }
  if (!s.mlm_labels.empty()) {
    auto y = rows_tensor(s.mlm_labels, b, s.seq, torch::kInt32).to(torch::kInt64);
    out.inputs.predict_mask = y.ne(kIgnoreLabel);
    out.labels = y.index({out.inputs.predict_mask});
  }
  if (!store) return out;
  const auto& meta = store->manifest().meta;
  if (meta.targets == "mlm_topk") {
    const auto k = meta.topk;
    std::vector<float> values, lse;
    std::vector<std::int64_t> indices;
    for (auto r : rows) store->read_topk(r, values, indices, lse);
    const auto tokens = static_cast<std::int64_t>(lse.size());
    DISTILL_CHECK(tokens == out.labels.size(0), StoreError, "the store holds ", tokens,
                  " masked tokens for this batch, the data set masks ", out.labels.size(0),
                  " (store made from other masking?)");
    out.topk_values = torch::from_blob(values.data(), {tokens, k}, torch::kFloat32).clone();
    out.topk_indices = torch::from_blob(indices.data(), {tokens, k}, torch::kInt64).clone();
    out.topk_lse = torch::from_blob(lse.data(), {tokens}, torch::kFloat32).clone();
  } else {
    out.teacher_logits = store_logits(*store, rows);
    if (want_layers && meta.has_layers()) add_store_layers(out, *store, rows);
  }
  return out;
}

}  // namespace distill
