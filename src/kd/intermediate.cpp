#include "distill/kd/intermediate.h"

#include <torch/torch.h>

#include "distill/util/error.h"

namespace distill {

void LayerLossOptions::validate() const {
  DISTILL_CHECK(hidden_loss == "mse" || hidden_loss == "cosine", ConfigError, "distill.hidden_loss = '", hidden_loss,
                "': expected mse or cosine");
  DISTILL_CHECK(attention_loss == "kl" || attention_loss == "mse", ConfigError, "distill.attention_loss = '",
                attention_loss, "': expected kl or mse");
  DISTILL_CHECK(head_mismatch == "refuse" || head_mismatch == "average", ConfigError, "distill.head_mismatch = '",
                head_mismatch, "': expected refuse or average");
  DISTILL_CHECK(hidden_weight >= 0 && attention_weight >= 0, ConfigError,
                "distill.hidden_weight and distill.attention_weight must be >= 0");
}

at::Tensor hidden_mse(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask) {
  auto m = mask.to(s.dtype()).unsqueeze(-1);  // [batch, seq, 1]
  return ((s - t).pow(2) * m).sum() / (m.sum() * s.size(-1)).clamp_min(1);
}

at::Tensor hidden_cosine(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask) {
  auto m = mask.to(s.dtype());
  auto cos = torch::cosine_similarity(s, t, -1, 1e-8);  // [batch, seq]
  return ((1 - cos) * m).sum() / m.sum().clamp_min(1);
}

namespace {
constexpr double kTiny = 1e-30;
at::Tensor query_mask(const at::Tensor& mask, const at::Tensor& like) {
  return mask.to(like.dtype()).unsqueeze(1).unsqueeze(-1);  // [batch, 1, seq, 1]
}
}  // namespace

at::Tensor attention_kl(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask) {
  // Padded keys carry probability 0 in both: they add nothing, and the clamp keeps 0 * log 0 finite.
  auto row = (t * (torch::log(t.clamp_min(kTiny)) - torch::log(s.clamp_min(kTiny)))).sum(-1, true);
  auto q = query_mask(mask, s);
  return (row * q).sum() / (q.sum() * s.size(1)).clamp_min(1);
}

at::Tensor attention_mse(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask) {
  auto q = query_mask(mask, s);
  auto k = mask.to(s.dtype()).unsqueeze(1).unsqueeze(2);  // [batch, 1, 1, seq]
  auto w = q * k;
  return ((s - t).pow(2) * w).sum() / (w.sum() * s.size(1)).clamp_min(1);
}

LayerLossImpl::LayerLossImpl(const LayerLossOptions& o, const ModelConfig& st, const ModelConfig& te) : o_(o) {
  o.validate();
  hidden_map_ = parse_layer_map(o.hidden_map, st.layers, te.layers, "hidden", "distill.hidden_map");
  attention_map_ = parse_layer_map(o.attention_map, st.layers, te.layers, "attention", "distill.attention_map");
  if (!attention_map_.empty() && st.heads != te.heads)
    DISTILL_CHECK(o.head_mismatch == "average", ConfigError, "distill.attention_map: the student has ", st.heads,
                  " heads, the teacher ", te.heads, " (pair ", attention_map_.pairs[0].first, ":",
                  attention_map_.pairs[0].second, "); set distill.head_mismatch: average to compare head means");
  proj_ = register_module("hidden", torch::nn::ModuleDict());
  if (st.hidden != te.hidden)
    for (const auto& p : hidden_map_.pairs) {
      torch::nn::Linear l(st.hidden, te.hidden);
      torch::nn::init::normal_(l->weight, 0.0, 0.02);
      torch::nn::init::zeros_(l->bias);
      proj_->update({{std::to_string(p.first), l.ptr()}});
    }
}

LayerLossTerms LayerLossImpl::forward(const ModelOutput& s, const ModelOutput& t, const at::Tensor& mask) {
  LayerLossTerms r;
  for (const auto& [si, ti] : hidden_map_.pairs) {
    DISTILL_CHECK(si < static_cast<long>(s.hidden.size()) && ti < static_cast<long>(t.hidden.size()), DataError,
                  "distill.hidden_map pair ", si, ":", ti, ": the student returned ", s.hidden.size(),
                  " hidden states, the teacher ", t.hidden.size());
    auto hs = s.hidden[si];
    const auto key = std::to_string(si);
    if (proj_->contains(key)) hs = proj_[key]->as<torch::nn::LinearImpl>()->forward(hs);
    const auto& ht = t.hidden[ti].to(hs.dtype());
    auto l = o_.hidden_loss == "mse" ? hidden_mse(hs, ht, mask) : hidden_cosine(hs, ht, mask);
    r.hidden = r.hidden.defined() ? r.hidden + l : l;
  }
  for (const auto& [si, ti] : attention_map_.pairs) {
    DISTILL_CHECK(si <= static_cast<long>(s.attentions.size()) && ti <= static_cast<long>(t.attentions.size()),
                  DataError, "distill.attention_map pair ", si, ":", ti, ": the student returned ",
                  s.attentions.size(), " attention maps, the teacher ", t.attentions.size());
    auto as = s.attentions[si - 1];
    auto at = t.attentions[ti - 1].to(as.dtype());
    if (as.size(1) != at.size(1)) {
      as = as.mean(1, true);
      at = at.mean(1, true);
    }
    auto l = o_.attention_loss == "kl" ? attention_kl(as, at, mask) : attention_mse(as, at, mask);
    r.attention = r.attention.defined() ? r.attention + l : l;
  }
  return r;
}

}  // namespace distill
