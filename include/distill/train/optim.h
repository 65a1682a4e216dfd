// AdamW (decoupled weight decay, bias-corrected moments) with explicit, checkpointable state,
// and the linear warmup + linear decay learning-rate schedule.
#pragma once
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "distill/io/safetensors.h"

namespace distill {

struct OptimOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;  // not applied to biases and LayerNorm weights (BERT convention)
};

class AdamW {
 public:
  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, OptimOptions o);
  // One update with learning rate `lr` from the parameters' current .grad().
  void step(double lr);
  std::int64_t steps() const { return steps_; }
  // Moments as "exp_avg.<name>" / "exp_avg_sq.<name>" plus "step".
  std::map<std::string, TensorBlob> state() const;
  void load_state(const std::map<std::string, TensorBlob>& s, const std::string& where);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    bool decay;
  };
  std::vector<Slot> slots_;
  OptimOptions o_;
  std::int64_t steps_ = 0;
};

// lr at 0-based `step` of `total`: linear warmup over `warmup` steps, then linear decay to 0.
double linear_schedule(double base, std::int64_t step, std::int64_t total, std::int64_t warmup);

// Scales gradients so their global L2 norm is at most max_norm (> 0); returns the norm before.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace distill
