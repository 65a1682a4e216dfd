// BERT-style encoder with a sequence-classification or masked-LM head, and the Network interface
// every trainable model (BERT or vector) implements. Module names are the Hugging Face parameter
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

#include "distill/model/config.h"

namespace distill {

struct BertOutput {
  torch::Tensor logits;                    // [batch, num_labels]; masked LM: [predicted positions, vocab]
  std::vector<torch::Tensor> hidden;       // L + 1 of [batch, seq, hidden]; 0 = embeddings (when asked)
  std::vector<torch::Tensor> attentions;   // L of [batch, heads, seq, seq], blocks 1..L (when asked)
};

struct BertInputs {
  torch::Tensor input_ids;       // [batch, seq] int64
  torch::Tensor attention_mask;  // [batch, seq] int64, 1 = real token
  torch::Tensor token_type_ids;  // [batch, seq] int64
  torch::Tensor features;        // [batch, input_dim] float32, vector models only
  // Masked LM: [batch, seq] bool, the positions predicted (logits rows in row-major order).
  torch::Tensor predict_mask;
};

// What the trainer, eval and teachers see of a model.
class NetworkImpl : public torch::nn::Module {
 public:
  virtual BertOutput forward(const BertInputs& in, bool want_hidden = false, bool want_attentions = false) = 0;
  virtual const BertConfig& config() const = 0;
};
using Network = std::shared_ptr<NetworkImpl>;

// A freshly initialised model of `c.kind` (ConfigError for an invalid config).
Network make_network(const BertConfig& c);

class BertForSequenceClassificationImpl;

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& types);  // [batch, seq, hidden]
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const BertConfig& c);
  // Returns the context [batch, seq, hidden]; `probs` receives [batch, heads, seq, seq].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs);
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Dropout dropout{nullptr};
  long heads, head_dim;
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> LayerNorm(x + residual); HF's BertSelfOutput and BertOutput.
class BertResidualImpl : public torch::nn::Module {
 public:
  BertResidualImpl(long in, long out, const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertResidual);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs);
  BertSelfAttention self{nullptr};
  BertResidual output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, torch::Tensor* probs);
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidual output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertConfig& c);
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& hidden);  // [batch, hidden] from the first token
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& c, bool with_pooler = true);
  // Returns the last hidden state; fills `out.hidden` / `out.attentions` when asked.
  torch::Tensor forward(const BertInputs& in, BertOutput& out, bool want_hidden, bool want_attentions);
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertModel);

class BertForSequenceClassificationImpl : public NetworkImpl {
 public:
  explicit BertForSequenceClassificationImpl(const BertConfig& c);
  BertOutput forward(const BertInputs& in, bool want_hidden = false, bool want_attentions = false) override;
  const BertConfig& config() const override { return config_; }
  BertModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  BertConfig config_;
};
TORCH_MODULE(BertForSequenceClassification);

// HF's BertForMaskedLM: no pooler; cls.predictions.transform (dense, gelu, LayerNorm) and a
// decoder tied to the word embeddings plus cls.predictions.bias. Logits only at predict_mask.
class BertForMaskedLMImpl : public NetworkImpl {
 public:
  explicit BertForMaskedLMImpl(const BertConfig& c);
  BertOutput forward(const BertInputs& in, bool want_hidden = false, bool want_attentions = false) override;
  const BertConfig& config() const override { return config_; }
  BertModel bert{nullptr};
  torch::nn::Linear transform{nullptr};
  torch::nn::LayerNorm transform_ln{nullptr};
  torch::Tensor decoder_bias;

 private:
  BertConfig config_;
};
TORCH_MODULE(BertForMaskedLM);

// Parameters only (no buffers) counted in elements.
long parameter_count(torch::nn::Module& m);

}  // namespace distill
