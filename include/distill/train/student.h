// The student one rank trains: the model, the layer-loss projections, their parameters by name
// and the optimizer over them, made the same on every rank (Note [exact resume]).
#pragma once
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distill/comm/communicator.h"
#include "distill/kd/intermediate.h"
#include "distill/model/network.h"
#include "distill/train/optim.h"
#include "distill/train/trainer.h"

namespace distill {

struct Student {
  // Collective over `comm`: seeds LibTorch from train.seed, makes the model (job.init sets its
  // weights) and the layer-loss projections, broadcasts both from rank 0, seeds this rank's dropout
  // stream from (seed, rank), moves them to `device` (Note [devices]) and makes the optimizer.
  // Throws ConfigError when the layer maps do not fit the student, the teacher or the store.
  Student(Communicator& comm, const TrainJob& job, const c10::Device& device);

  Network model;
  // Note [layer projections]: trained, reduced and checkpointed with the student, saved apart
  // (projections.safetensors) so model.safetensors stays a plain HF model. Null without layer maps.
  LayerLoss layer_loss{nullptr};
  // The model's parameters by HF name, then the projections' as "distill.projections.<name>".
  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::vector<torch::Tensor> params;  // the same, in the same order
  std::unique_ptr<Optimizer> opt;     // train.optimizer over `named`
};

}  // namespace distill
