// What the trainer, evaluation, teachers and the data loader see of a model, whatever its kind
// (BERT classifier, BERT masked LM, MLP, deep linear): its inputs, its outputs, and the Network
// interface. LibTorch only; no model code.
#pragma once
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "distill/model/config.h"

namespace distill {

// One block's query, key and value projections, each [batch, seq, hidden] (before the split into
// heads): what the MiniLMv2 relation loss compares (kd/intermediate.h).
struct AttentionQkv {
  torch::Tensor query, key, value;
};

struct ModelOutput {
  torch::Tensor logits;                   // [batch, num_labels]; masked LM: [predicted positions, vocab]
  std::vector<torch::Tensor> hidden;      // L + 1 of [batch, seq, hidden]; 0 = embeddings (when asked)
  std::vector<torch::Tensor> attentions;  // L of [batch, heads, seq, seq], blocks 1..L (when asked)
  std::vector<AttentionQkv> qkv;          // L, blocks 1..L (with attentions, BERT models only)
};

struct ModelInputs {
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
  virtual ModelOutput forward(const ModelInputs& in, bool want_hidden = false, bool want_attentions = false) = 0;
  virtual const ModelConfig& config() const = 0;
};
using Network = std::shared_ptr<NetworkImpl>;

// A freshly initialised model of `c.kind` (ConfigError for an invalid config).
Network make_network(const ModelConfig& c);

// Parameters only (no buffers) counted in elements.
long parameter_count(torch::nn::Module& m);

// The inputs on `d` (defined tensors only; copies from the CPU go through pinned memory without
// blocking the host).
ModelInputs to_device(const ModelInputs& in, const c10::Device& d);
// One tensor on `d` (undefined stays undefined), the same way.
torch::Tensor to_device(const torch::Tensor& t, const c10::Device& d);

}  // namespace distill
