#include "distill/model/vector.h"

#include <torch/torch.h>

#include <cmath>

#include "distill/model/bert.h"
#include "distill/util/error.h"

namespace distill {

VectorNetImpl::VectorNetImpl(const ModelConfig& c) : config_(c) {
  c.validate("model");
  DISTILL_CHECK(c.input_dim > 0 && c.num_labels > 0, ConfigError, "a ", distill::name(c.kind),
                " model needs input_dim and num_labels (from the data set), got ", c.input_dim, " and ", c.num_labels);
  const bool bias = c.kind == ModelKind::kMlp;
  layers = register_module("layers", torch::nn::ModuleList());
  dropout = register_module("dropout", torch::nn::Dropout(bias ? c.dropout : 0.0));
  torch::NoGradGuard g;
  for (long i = 0; i < c.depth; ++i) {
    const long in = i == 0 ? c.input_dim : c.width, out = i + 1 == c.depth ? c.num_labels : c.width;
    torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(bias));
    const double s = c.init_scale > 0 ? c.init_scale : 1.0 / std::sqrt(static_cast<double>(in));
    l->weight.normal_(0.0, s);
    if (bias) l->bias.zero_();
    layers->push_back(l);
  }
}

ModelOutput VectorNetImpl::forward(const ModelInputs& in, bool want_hidden, bool) {
  DISTILL_CHECK(in.features.defined() && in.features.dim() == 2 && in.features.size(1) == config_.input_dim, DataError,
                "a ", distill::name(config_.kind), " model takes feature vectors of width ", config_.input_dim,
                in.features.defined() ? distill::str(", got shape ", in.features.sizes()) : ", got token ids");
  ModelOutput out;
  auto x = in.features;
  const auto n = static_cast<long>(layers->size());
  for (long i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::LinearImpl>()->forward(x);
    if (i + 1 < n && config_.kind == ModelKind::kMlp) x = dropout(torch::relu(x));
    if (want_hidden) out.hidden.push_back(x);
  }
  out.logits = x;
  return out;
}

Network make_network(const ModelConfig& c) {
  if (c.kind == ModelKind::kBert) return BertForSequenceClassification(c).ptr();
  if (c.kind == ModelKind::kBertMlm) return BertForMaskedLM(c).ptr();
  if (c.is_vector()) return VectorNet(c).ptr();
  c.validate("model");  // names the bad kind
  throw ConfigError(distill::str("unknown model kind '", distill::name(c.kind), "'"));
}

}  // namespace distill
