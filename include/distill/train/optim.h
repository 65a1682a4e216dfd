// Optimizers with explicit, checkpointable state: AdamW (decoupled weight decay, bias-corrected
// moments) and plain SGD (optional heavy-ball momentum, L2 weight decay); and the learning-rate
// schedules (linear warmup + linear decay, or constant).
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

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` from the parameters' current .grad().
  virtual void step(double lr) = 0;
  virtual std::map<std::string, TensorBlob> state() const = 0;
  virtual void load_state(const std::map<std::string, TensorBlob>& s, const std::string& where) = 0;
};

class AdamW : public Optimizer {
 public:
  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, OptimOptions o);
  void step(double lr) override;
  std::int64_t steps() const { return steps_; }
  // Moments as "exp_avg.<name>" / "exp_avg_sq.<name>" plus "step".
  std::map<std::string, TensorBlob> state() const override;
  void load_state(const std::map<std::string, TensorBlob>& s, const std::string& where) override;

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

// SGD: v = momentum * v + g + wd * w; w -= lr * v (PyTorch's SGD, dampening 0; v = g at momentum 0).
// Weight decay applies to every parameter.
class Sgd : public Optimizer {
 public:
  Sgd(const std::vector<std::pair<std::string, torch::Tensor>>& params, double momentum, double weight_decay);
  void step(double lr) override;
  // "momentum.<name>" (when momentum > 0) plus "step".
  std::map<std::string, TensorBlob> state() const override;
  void load_state(const std::map<std::string, TensorBlob>& s, const std::string& where) override;

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> buf_;
  double momentum_, wd_;
  std::int64_t steps_ = 0;
};

// lr at 0-based `step` of `total`: linear warmup over `warmup` steps, then linear decay to 0.
double linear_schedule(double base, std::int64_t step, std::int64_t total, std::int64_t warmup);

// Scales gradients so their global L2 norm is at most max_norm (> 0); returns the norm before.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace distill
