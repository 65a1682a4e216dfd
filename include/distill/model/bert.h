// BERT-style encoder with a sequence-classification or masked-LM head (a Network, model/network.h).
// Module names are the Hugging Face parameter
// names (bert.embeddings.word_embeddings.weight, bert.encoder.layer.3.attention.self.query.weight,
// classifier.weight, cls.predictions.transform.dense.weight, ...), so safetensors import and
// export need no renaming.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "distill/model/network.h"

namespace distill {

class BertForSequenceClassificationImpl;

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& types);  // [batch, seq, hidden]
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const ModelConfig& c);
  // Returns the context [batch, seq, hidden]; `probs` receives [batch, heads, seq, seq].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs,
                        AttentionQkv* qkv = nullptr);
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Dropout dropout{nullptr};
  long heads, head_dim;
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> LayerNorm(x + residual); HF's BertSelfOutput and BertOutput.
class BertResidualImpl : public torch::nn::Module {
 public:
  BertResidualImpl(long in, long out, const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertResidual);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs,
                        AttentionQkv* qkv = nullptr);
  BertSelfAttention self{nullptr};
  BertResidual output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs,
                        AttentionQkv* qkv = nullptr);
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidual output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const ModelConfig& c);
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& hidden);  // [batch, hidden] from the first token
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const ModelConfig& c, bool with_pooler = true);
  // Returns the last hidden state; fills `out.hidden` / `out.attentions` when asked.
  torch::Tensor forward(const ModelInputs& in, ModelOutput& out, bool want_hidden, bool want_attentions);
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertModel);

class BertForSequenceClassificationImpl : public NetworkImpl {
 public:
  explicit BertForSequenceClassificationImpl(const ModelConfig& c);
  ModelOutput forward(const ModelInputs& in, bool want_hidden = false, bool want_attentions = false) override;
  const ModelConfig& config() const override { return config_; }
  BertModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(BertForSequenceClassification);

// HF's BertForMaskedLM: no pooler; cls.predictions.transform (dense, gelu, LayerNorm) and a
// decoder tied to the word embeddings plus cls.predictions.bias. Logits only at predict_mask.
class BertForMaskedLMImpl : public NetworkImpl {
 public:
  explicit BertForMaskedLMImpl(const ModelConfig& c);
  ModelOutput forward(const ModelInputs& in, bool want_hidden = false, bool want_attentions = false) override;
  const ModelConfig& config() const override { return config_; }
  BertModel bert{nullptr};
  torch::nn::Linear transform{nullptr};
  torch::nn::LayerNorm transform_ln{nullptr};
  torch::Tensor decoder_bias;

 private:
  ModelConfig config_;
};
TORCH_MODULE(BertForMaskedLM);

}  // namespace distill
