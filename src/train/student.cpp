#include "distill/train/student.h"

#include <torch/torch.h>

#include <algorithm>

#include "distill/data/sampler.h"
#include "distill/util/error.h"

namespace distill {

namespace {

void broadcast_params(Communicator& comm, torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) comm.broadcast(p.data_ptr<float>(), p.numel(), DType::kFloat32, 0);
}

// The teacher's architecture as the layer maps see it: the online teacher's, else the store's.
ModelConfig teacher_layers_config(const TrainJob& job) {
  if (job.online_teacher && job.online_teacher->config()) return *job.online_teacher->config();
  const bool stored_layers = job.store && job.store->manifest().meta.has_layers();
  DISTILL_CHECK(stored_layers, ConfigError,
                "layer maps need the teacher's layers: an online BERT teacher "
                "(teacher.online: true) or a store precomputed with the same distill.hidden_map/attention_map");
  const auto& m = job.store->manifest().meta;
  ModelConfig tc;
  tc.layers = m.teacher_layers;
  tc.hidden = m.hidden_size;
  tc.heads = m.heads;
  return tc;
}

// The layer losses of job.layers (null without maps), checked against the store's layers when
// the teacher's come from there.
LayerLoss make_layer_loss(const TrainJob& job) {
  if (job.layers.hidden_map.empty() && job.layers.attention_map.empty()) return LayerLoss{nullptr};
  const ModelConfig tc = teacher_layers_config(job);
  DISTILL_CHECK(job.model.kind == ModelKind::kBert && tc.kind == ModelKind::kBert, ConfigError,
                "layer maps need BERT classifiers as "
                "student and teacher; the student is a ",
                name(job.model.kind), ", the teacher a ", name(tc.kind));
  LayerLoss layer_loss(job.layers, job.model, tc);
  if (job.online_teacher && job.online_teacher->config()) return layer_loss;
  const auto& m = job.store->manifest().meta;
  const bool relation = job.layers.attention_loss == AttentionLoss::kRelation;
  for (long l : teacher_layers_of(layer_loss->hidden_map()))
    DISTILL_CHECK(std::count(m.hidden_layers.begin(), m.hidden_layers.end(), l), ConfigError,
                  "distill.hidden_map needs teacher hidden state ", l,
                  ", which the store does not hold; "
                  "precompute with this map into a new store.path");
  const auto& stored = relation ? m.qkv_layers : m.attention_layers;
  for (long l : teacher_layers_of(layer_loss->attention_map()))
    DISTILL_CHECK(std::count(stored.begin(), stored.end(), l), ConfigError, "distill.attention_map needs teacher ",
                  relation ? "queries, keys and values (attention_loss: relation)" : "attention", " of layer ", l,
                  ", which the store does not hold",
                  std::count(m.qkv_layers.begin(), m.qkv_layers.end(), l) ? " (it holds its queries, keys and values: "
                                                                             "precomputed for attention_loss: relation)"
                                                                           : "",
                  "; precompute with this map and attention_loss into a new store.path");
  return layer_loss;
}

}  // namespace

Student::Student(Communicator& comm, const TrainJob& job, const c10::Device& device) {
  const auto& o = job.opt;
  torch::manual_seed(static_cast<std::uint64_t>(o.seed));
  model = make_network(job.model);
  if (job.init) job.init(*model);
  broadcast_params(comm, *model);
  layer_loss = make_layer_loss(job);
  if (layer_loss) broadcast_params(comm, *layer_loss);
  torch::manual_seed(mix_seed(static_cast<std::uint64_t>(o.seed), 0x5eed, static_cast<std::uint64_t>(comm.rank())));
  // Note [devices]: weights are made and broadcast on the host, then moved.
  model->to(device);
  if (layer_loss) layer_loss->to(device);
  for (auto& p : model->named_parameters()) named.emplace_back(p.key(), p.value());
  if (layer_loss)
    for (auto& p : layer_loss->named_parameters()) named.emplace_back("distill.projections." + p.key(), p.value());
  for (const auto& [name, p] : named) params.push_back(p);
  if (o.optimizer == OptimizerKind::kSgd)
    opt = std::make_unique<Sgd>(named, o.momentum, o.effective_weight_decay());
  else
    opt = std::make_unique<AdamW>(named, OptimOptions{0.9, 0.999, 1e-8, o.effective_weight_decay()});
}

}  // namespace distill
