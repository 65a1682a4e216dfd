#include "distill/model/network.h"

#include <torch/torch.h>

namespace distill {

long parameter_count(torch::nn::Module& m) {
  long n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

torch::Tensor to_device(const torch::Tensor& t, const c10::Device& d) {
  if (!t.defined() || t.device() == d) return t;
  if (d.is_cuda() && t.is_cpu()) return t.pin_memory().to(d, /*non_blocking=*/true);
  return t.to(d);
}

ModelInputs to_device(const ModelInputs& in, const c10::Device& d) {
  return {to_device(in.input_ids, d), to_device(in.attention_mask, d), to_device(in.token_type_ids, d),
          to_device(in.features, d), to_device(in.predict_mask, d)};
}

}  // namespace distill
