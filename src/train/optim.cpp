#include "distill/train/optim.h"

#include <torch/torch.h>

#include <cmath>

#include "distill/model/weights.h"
#include "distill/util/error.h"

namespace distill {

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, OptimOptions o) : o_(o) {
  for (const auto& [name, p] : params) {
    bool no_decay = name.size() >= 4 &&
                    (name.compare(name.size() - 4, 4, "bias") == 0 || name.find("LayerNorm") != std::string::npos);
    slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), !no_decay});
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard g;
  ++steps_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(steps_));
  const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(steps_));
  if (!slots_.empty() && slots_[0].param.is_cuda()) {
    // GPUs: the same update over all tensors at once (multi-tensor kernels, few launches).
    std::vector<torch::Tensor> ps, gs, ms, vs, decayed;
    for (auto& s : slots_) {
      if (!s.param.grad().defined()) continue;
      ps.push_back(s.param);
      gs.push_back(s.param.grad());
      ms.push_back(s.m);
      vs.push_back(s.v);
      if (s.decay) decayed.push_back(s.param);
    }
    if (ps.empty()) return;
    if (o_.weight_decay != 0 && !decayed.empty()) at::_foreach_mul_(decayed, 1.0 - lr * o_.weight_decay);
    at::_foreach_mul_(ms, o_.beta1);
    at::_foreach_add_(ms, gs, 1.0 - o_.beta1);
    at::_foreach_mul_(vs, o_.beta2);
    at::_foreach_addcmul_(vs, gs, gs, 1.0 - o_.beta2);
    auto denom = at::_foreach_div(vs, bc2);
    at::_foreach_sqrt_(denom);
    at::_foreach_add_(denom, o_.eps);
    at::_foreach_addcdiv_(ps, ms, denom, -lr / bc1);
    return;
  }
  for (auto& s : slots_) {
    const auto& grad = s.param.grad();
    if (!grad.defined()) continue;
    if (s.decay && o_.weight_decay != 0) s.param.mul_(1.0 - lr * o_.weight_decay);
    s.m.mul_(o_.beta1).add_(grad, 1.0 - o_.beta1);
    s.v.mul_(o_.beta2).addcmul_(grad, grad, 1.0 - o_.beta2);
    auto denom = (s.v / bc2).sqrt_().add_(o_.eps);
    s.param.addcdiv_(s.m, denom, -lr / bc1);
  }
}

std::map<std::string, TensorBlob> AdamW::state() const {
  std::map<std::string, TensorBlob> out;
  for (const auto& s : slots_) {
    out["exp_avg." + s.name] = to_blob(s.m);
    out["exp_avg_sq." + s.name] = to_blob(s.v);
  }
  out["step"] = to_blob(torch::tensor({steps_}, torch::kInt64));
  return out;
}

void AdamW::load_state(const std::map<std::string, TensorBlob>& st, const std::string& where) {
  torch::NoGradGuard g;
  auto get = [&](const std::string& key, torch::Tensor& dst) {
    auto it = st.find(key);
    DISTILL_CHECK(it != st.end(), DataError, where, " lacks optimizer tensor '", key, "'");
    auto t = from_blob(it->second);
    DISTILL_CHECK(t.sizes() == dst.sizes(), DataError, where, ": optimizer tensor '", key, "' has shape ", t.sizes(),
                  ", expected ", dst.sizes());
    dst.copy_(t);
  };
  for (auto& s : slots_) {
    get("exp_avg." + s.name, s.m);
    get("exp_avg_sq." + s.name, s.v);
  }
  auto it = st.find("step");
  DISTILL_CHECK(it != st.end(), DataError, where, " lacks optimizer 'step'");
  steps_ = from_blob(it->second).item<std::int64_t>();
}

Sgd::Sgd(const std::vector<std::pair<std::string, torch::Tensor>>& params, double momentum, double weight_decay)
    : params_(params), momentum_(momentum), wd_(weight_decay) {
  for (const auto& p : params_) buf_.push_back(torch::zeros_like(p.second));
}

void Sgd::step(double lr) {
  torch::NoGradGuard g;
  ++steps_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& w = params_[i].second;
    if (!w.grad().defined()) continue;
    auto d = wd_ != 0 ? w.grad() + wd_ * w : w.grad();
    if (momentum_ > 0) {
      // PyTorch starts the buffer at the first gradient.
      if (steps_ == 1)
        buf_[i].copy_(d);
      else
        buf_[i].mul_(momentum_).add_(d);
      w.add_(buf_[i], -lr);
    } else {
      w.add_(d, -lr);
    }
  }
}

std::map<std::string, TensorBlob> Sgd::state() const {
  std::map<std::string, TensorBlob> out;
  if (momentum_ > 0)
    for (std::size_t i = 0; i < params_.size(); ++i) out["momentum." + params_[i].first] = to_blob(buf_[i]);
  out["step"] = to_blob(torch::tensor({steps_}, torch::kInt64));
  return out;
}

void Sgd::load_state(const std::map<std::string, TensorBlob>& st, const std::string& where) {
  torch::NoGradGuard g;
  if (momentum_ > 0)
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto key = "momentum." + params_[i].first;
      auto it = st.find(key);
      DISTILL_CHECK(it != st.end(), DataError, where, " lacks optimizer tensor '", key,
                    "' (written by another optimizer?)");
      auto t = from_blob(it->second);
      DISTILL_CHECK(t.sizes() == buf_[i].sizes(), DataError, where, ": optimizer tensor '", key, "' has shape ",
                    t.sizes(), ", expected ", buf_[i].sizes());
      buf_[i].copy_(t);
    }
  auto it = st.find("step");
  DISTILL_CHECK(it != st.end(), DataError, where, " lacks optimizer 'step'");
  steps_ = from_blob(it->second).item<std::int64_t>();
}

double linear_schedule(double base, std::int64_t step, std::int64_t total, std::int64_t warmup) {
  if (step < warmup) return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double rest = static_cast<double>(total - warmup);
  if (rest <= 0) return base;
  return base * std::max(0.0, static_cast<double>(total - step) / rest);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard g;
  // Per-tensor float32 sums of squares, added in float64 on the host in parameter order; one
  // transfer from the device.
  std::vector<torch::Tensor> grads, sums;
  for (const auto& p : params)
    if (p.grad().defined()) {
      grads.push_back(p.grad());
      sums.push_back(p.grad().pow(2).sum());
    }
  if (grads.empty()) return 0.0;
  auto host = torch::stack(sums).to(torch::kCPU, torch::kFloat64);
  double sq = 0;
  for (std::int64_t i = 0; i < host.size(0); ++i) sq += host.data_ptr<double>()[i];
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    if (grads[0].is_cuda()) {
      at::_foreach_mul_(grads, scale);
    } else {
      for (auto& gr : grads) gr.mul_(scale);
    }
  }
  return norm;
}

}  // namespace distill
