#include "distill/model/init.h"

#include <torch/torch.h>

#include <string>

#include "distill/model/network.h"

namespace distill {

void copy_parameters(const NetworkImpl& from, NetworkImpl& to) {
  torch::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src[p.key()]);
}

void copy_embeddings_and_layers(const NetworkImpl& from, NetworkImpl& to, const std::vector<long>& layers) {
  torch::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) {
    std::string name = p.key();
    const std::string prefix = "bert.encoder.layer.";
    if (name.rfind(prefix, 0) == 0) {
      const auto dot = name.find('.', prefix.size());
      const long j = std::stol(name.substr(prefix.size(), dot - prefix.size()));
      name = prefix + std::to_string(layers[j] - 1) + name.substr(dot);
    } else if (name.rfind("bert.embeddings.", 0) != 0) {
      continue;  // pooler and classifier keep their initialisation
    }
    p.value().copy_(src[name]);
  }
}

}  // namespace distill
