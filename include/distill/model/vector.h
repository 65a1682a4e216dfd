// Networks on feature vectors: an MLP (Linear + ReLU, biases) and a deep linear network
// f(x) = W_depth ... W_1 x without biases, the students of the theory of distillation. Parameter
// names are "layers.<i>.weight" (and ".bias" for the MLP), i = 0 nearest the input.
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>

#include "distill/model/network.h"

namespace distill {

class VectorNetImpl : public NetworkImpl {
 public:
  // Weights are N(0, s^2) with s = init_scale, or 1/sqrt(fan_in) when it is 0; MLP biases start at 0.
  explicit VectorNetImpl(const ModelConfig& c);
  // Reads in.features [batch, input_dim]; out.hidden holds each layer's output when asked.
  ModelOutput forward(const ModelInputs& in, bool want_hidden = false, bool want_attentions = false) override;
  const ModelConfig& config() const override { return config_; }
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(VectorNet);

}  // namespace distill
