#include "distill/model/bert.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

namespace distill {

namespace F = torch::nn::functional;

namespace {
// BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm.
void init_linear(torch::nn::Linear& l) {
  torch::NoGradGuard g;
  l->weight.normal_(0.0, 0.02);
  if (l->bias.defined()) l->bias.zero_();
}
torch::nn::LayerNorm make_ln(const ModelConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden}).eps(c.layer_norm_eps));
}
}  // namespace

BertEmbeddingsImpl::BertEmbeddingsImpl(const ModelConfig& c) {
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, c.hidden));
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(c.max_positions, c.hidden));
  token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab, c.hidden));
  LayerNorm = register_module("LayerNorm", make_ln(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  torch::NoGradGuard g;
  for (auto* e : {&word_embeddings, &position_embeddings, &token_type_embeddings}) (*e)->weight.normal_(0.0, 0.02);
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids, const torch::Tensor& types) {
  auto pos = torch::arange(ids.size(1), ids.options()).unsqueeze(0);
  auto x = word_embeddings(ids) + position_embeddings(pos) + token_type_embeddings(types);
  return dropout(LayerNorm(x));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const ModelConfig& c) : heads(c.heads), head_dim(c.hidden / c.heads) {
  query = register_module("query", torch::nn::Linear(c.hidden, c.hidden));
  key = register_module("key", torch::nn::Linear(c.hidden, c.hidden));
  value = register_module("value", torch::nn::Linear(c.hidden, c.hidden));
  dropout = register_module("dropout", torch::nn::Dropout(c.attention_dropout));
  init_linear(query);
  init_linear(key);
  init_linear(value);
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask,
                                             torch::Tensor* probs, AttentionQkv* qkv) {
  const auto b = x.size(0), s = x.size(1);
  auto split = [&](const torch::Tensor& t) { return t.view({b, s, heads, head_dim}).transpose(1, 2); };
  auto qx = query(x), kx = key(x), vx = value(x);  // [batch, seq, hidden]
  if (qkv) *qkv = {qx, kx, vx};
  auto q = split(qx), k = split(kx), v = split(vx);  // [batch, heads, seq, head_dim]
#if TORCH_VERSION_MAJOR >= 2
  // GPUs: the fused attention kernel when the probabilities are not asked for (same function; its
  // dropout draws differ). The CPU keeps the explicit form, whose results the tests pin down.
  if (!probs && x.is_cuda()) {
    auto ctx = at::scaled_dot_product_attention(q, k, v, additive_mask.to(q.scalar_type()),
                                                is_training() ? dropout->options.p() : 0.0);
    return ctx.transpose(1, 2).reshape({b, s, heads * head_dim});
  }
#endif
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
  auto p = torch::softmax(scores + additive_mask, -1);  // [batch, heads, seq, seq]
  if (probs) *probs = p;
  auto ctx = torch::matmul(dropout(p), v);  // [batch, heads, seq, head_dim]
  return ctx.transpose(1, 2).reshape({b, s, heads * head_dim});
}

BertResidualImpl::BertResidualImpl(long in, long out, const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(in, out));
  LayerNorm = register_module("LayerNorm", make_ln(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  init_linear(dense);
}

torch::Tensor BertResidualImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return LayerNorm(dropout(dense(x)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const ModelConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertResidual(c.hidden, c.hidden, c));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& m, torch::Tensor* probs,
                                         AttentionQkv* qkv) {
  return output(self->forward(x, m, probs, qkv), x);
}

BertIntermediateImpl::BertIntermediateImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden, c.intermediate));
  init_linear(dense);
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) { return torch::gelu(dense(x)); }

BertLayerImpl::BertLayerImpl(const ModelConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertResidual(c.intermediate, c.hidden, c));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& m, torch::Tensor* probs,
                                     AttentionQkv* qkv) {
  auto a = attention->forward(x, m, probs, qkv);
  return output(intermediate(a), a);
}

BertEncoderImpl::BertEncoderImpl(const ModelConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (long i = 0; i < c.layers; ++i) layer->push_back(BertLayer(c));
}

BertPoolerImpl::BertPoolerImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden, c.hidden));
  init_linear(dense);
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) { return torch::tanh(dense(hidden.select(1, 0))); }

BertModelImpl::BertModelImpl(const ModelConfig& c, bool with_pooler) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", BertEncoder(c));
  if (with_pooler) pooler = register_module("pooler", BertPooler(c));
}

torch::Tensor BertModelImpl::forward(const ModelInputs& in, ModelOutput& out, bool want_hidden, bool want_attn) {
  auto x = embeddings(in.input_ids, in.token_type_ids);
  // [batch, 1, 1, seq]: 0 for real tokens, the lowest float for padding (as in HF).
  auto mask = (1.0 - in.attention_mask.to(x.dtype()).unsqueeze(1).unsqueeze(2)) * std::numeric_limits<float>::lowest();
  if (want_hidden) out.hidden.push_back(x);
  for (const auto& m : *encoder->layer) {
    torch::Tensor probs;
    AttentionQkv qkv;
    x = m->as<BertLayerImpl>()->forward(x, mask, want_attn ? &probs : nullptr, want_attn ? &qkv : nullptr);
    if (want_hidden) out.hidden.push_back(x);
    if (want_attn) {
      out.attentions.push_back(probs);
      out.qkv.push_back(qkv);
    }
  }
  return x;
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const ModelConfig& c) : config_(c) {
  c.validate("model");
  bert = register_module("bert", BertModel(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  classifier = register_module("classifier", torch::nn::Linear(c.hidden, std::max<long>(c.num_labels, 1)));
  init_linear(classifier);
}

ModelOutput BertForSequenceClassificationImpl::forward(const ModelInputs& in, bool want_hidden, bool want_attn) {
  ModelOutput out;
  auto last = bert->forward(in, out, want_hidden, want_attn);
  out.logits = classifier(dropout(bert->pooler(last)));
  return out;
}

BertForMaskedLMImpl::BertForMaskedLMImpl(const ModelConfig& c) : config_(c) {
  c.validate("model");
  bert = register_module("bert", BertModel(c, false));
  auto cls = register_module("cls", std::make_shared<torch::nn::Module>());
  auto predictions = cls->register_module("predictions", std::make_shared<torch::nn::Module>());
  auto tr = predictions->register_module("transform", std::make_shared<torch::nn::Module>());
  transform = tr->register_module("dense", torch::nn::Linear(c.hidden, c.hidden));
  transform_ln = tr->register_module("LayerNorm", make_ln(c));
  decoder_bias = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
  init_linear(transform);
}

ModelOutput BertForMaskedLMImpl::forward(const ModelInputs& in, bool want_hidden, bool want_attn) {
  ModelOutput out;
  auto last = bert->forward(in, out, want_hidden, want_attn);  // [batch, seq, hidden]
  auto rows = in.predict_mask.defined() ? last.index({in.predict_mask}) : last.reshape({-1, last.size(-1)});
  // CPU autocast leaves LayerNorm to its input's dtype: give it its weights' (float32).
  auto h = transform_ln(torch::gelu(transform(rows)).to(transform_ln->weight.scalar_type()));
  out.logits = torch::nn::functional::linear(h, bert->embeddings->word_embeddings->weight, decoder_bias);
  return out;
}

}  // namespace distill
