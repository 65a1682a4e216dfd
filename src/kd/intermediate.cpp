#include "distill/kd/intermediate.h"

#include <torch/torch.h>

#include "distill/util/error.h"

namespace distill {

const char* name(HiddenLoss l) { return l == HiddenLoss::kCosine ? "cosine" : "mse"; }
const char* name(AttentionLoss l) {
  return l == AttentionLoss::kMse ? "mse" : l == AttentionLoss::kRelation ? "relation" : "kl";
}
const char* name(HeadMismatch h) { return h == HeadMismatch::kAverage ? "average" : "refuse"; }

const OptionTable<LayerLossOptions>& LayerLossOptions::options() {
  static const OptionTable<LayerLossOptions> table = [] {
    using O = LayerLossOptions;
    const char* const kWeights = "distill.hidden_weight and distill.attention_weight must be >= 0";
    OptionTable<O> t("distill");
    t.add("hidden_map", &O::hidden_map,
          "student <- teacher hidden states: uniform (student m <- teacher m*N/M), last, skip:2,4,6 or pairs 0:0,1:3; "
          "hidden 0 = embeddings; empty = none");
    t.add("attention_map", &O::attention_map, "the same for attention maps, layers 1..L; empty = none");
    t.add("hidden_loss", &O::hidden_loss, {HiddenLoss::kMse, HiddenLoss::kCosine},
          "over real tokens, through a learned projection when widths differ");
    t.add("attention_loss", &O::attention_loss, {AttentionLoss::kKl, AttentionLoss::kMse, AttentionLoss::kRelation},
          "kl per head (MiniLM), mse (TinyBERT), or relation: KL of Q-Q, K-K and V-V relations (MiniLMv2, "
          "any head counts; a store keeps the teacher's Q/K/V), padding masked");
    t.add("hidden_weight", &O::hidden_weight, "weight of the summed hidden term")
        .check([](double v) { return v >= 0; }, kWeights);
    t.add("attention_weight", &O::attention_weight, "weight of the summed attention term")
        .check([](double v) { return v >= 0; }, kWeights);
    t.add("relation_heads", &O::relation_heads,
          "relation heads of attention_loss: relation (must divide both hidden sizes); 0 = the teacher's heads")
        .check([](long v) { return v >= 0; }, "distill.relation_heads must be >= 0");
    t.add("head_mismatch", &O::head_mismatch, {HeadMismatch::kRefuse, HeadMismatch::kAverage},
          "when student and teacher head counts differ: refuse, or compare head means");
    return t;
  }();
  return table;
}

void LayerLossOptions::validate() const { options().check(*this); }

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

at::Tensor relation_kl(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask, long heads) {
  const auto b = s.size(0), n = s.size(1);
  auto keys = mask.to(torch::kBool).view({b, 1, 1, n});  // [batch, 1, 1, seq]
  auto log_relation = [&](const at::Tensor& x) {             // [batch, heads, seq, seq]
    const long d = x.size(2) / heads;
    auto f = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat32);
    auto h = f.reshape({b, n, heads, d}).transpose(1, 2);  // [batch, heads, seq, d]
    auto scores = torch::matmul(h, h.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    return torch::log_softmax(scores.masked_fill(keys.logical_not(), -1e30), -1);
  };
  auto ls = log_relation(s), lt = log_relation(t);
  auto terms = torch::where(keys, lt.exp() * (lt - ls), torch::zeros({}, ls.options()));
  auto q = query_mask(mask, ls);
  return (terms.sum(-1, true) * q).sum() / (q.sum() * heads).clamp_min(1);
}

LayerLossImpl::LayerLossImpl(const LayerLossOptions& o, const ModelConfig& st, const ModelConfig& te) : o_(o) {
  o.validate();
  hidden_map_ = parse_layer_map(o.hidden_map, st.layers, te.layers, "hidden", "distill.hidden_map");
  attention_map_ = parse_layer_map(o.attention_map, st.layers, te.layers, "attention", "distill.attention_map");
  relation_heads_ = o.relation_heads > 0 ? o.relation_heads : te.heads;
  if (!attention_map_.empty() && o.attention_loss == AttentionLoss::kRelation)
    DISTILL_CHECK(relation_heads_ > 0 && st.hidden % relation_heads_ == 0 && te.hidden % relation_heads_ == 0,
                  ConfigError, "distill.relation_heads = ", relation_heads_, " must divide the student's hidden size ",
                  st.hidden, " and the teacher's ", te.hidden);
  else if (!attention_map_.empty() && st.heads != te.heads)
    DISTILL_CHECK(o.head_mismatch == HeadMismatch::kAverage, ConfigError, "distill.attention_map: the student has ",
                  st.heads, " heads, the teacher ", te.heads, " (pair ", attention_map_.pairs[0].first, ":",
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
    auto l = o_.hidden_loss == HiddenLoss::kMse ? hidden_mse(hs, ht, mask) : hidden_cosine(hs, ht, mask);
    r.hidden = r.hidden.defined() ? r.hidden + l : l;
  }
  for (const auto& [si, ti] : attention_map_.pairs) {
    if (o_.attention_loss == AttentionLoss::kRelation) {
      auto l = relation_pair(s, t, mask, si, ti);
      r.attention = r.attention.defined() ? r.attention + l : l;
      continue;
    }
    DISTILL_CHECK(si <= static_cast<long>(s.attentions.size()) && ti <= static_cast<long>(t.attentions.size()),
                  DataError, "distill.attention_map pair ", si, ":", ti, ": the student returned ", s.attentions.size(),
                  " attention maps, the teacher ", t.attentions.size());
    auto as = s.attentions[si - 1];
    auto at = t.attentions[ti - 1].to(as.dtype());
    if (as.size(1) != at.size(1)) {
      as = as.mean(1, true);
      at = at.mean(1, true);
    }
    auto l = o_.attention_loss == AttentionLoss::kKl ? attention_kl(as, at, mask) : attention_mse(as, at, mask);
    r.attention = r.attention.defined() ? r.attention + l : l;
  }
  return r;
}

at::Tensor LayerLossImpl::relation_pair(const ModelOutput& s, const ModelOutput& t, const at::Tensor& mask, long si,
                                        long ti) const {
  DISTILL_CHECK(si <= static_cast<long>(s.qkv.size()) && ti <= static_cast<long>(t.qkv.size()), DataError,
                "distill.attention_loss: relation, pair ", si, ":", ti, ": the student returned the queries, keys and "
                "values of ", s.qkv.size(), " layers, the teacher of ", t.qkv.size(),
                " (a BERT teacher run online gives them, and a store precomputed with attention_loss: relation; "
                "TorchScript teachers do not)");
  const auto &a = s.qkv[si - 1], &b = t.qkv[ti - 1];
  return relation_kl(a.query, b.query, mask, relation_heads_) + relation_kl(a.key, b.key, mask, relation_heads_) +
         relation_kl(a.value, b.value, mask, relation_heads_);
}

}  // namespace distill
