// Intermediate-layer distillation: hidden-state losses (MSE or cosine, through a learned linear
// projection from student to teacher width when they differ) and attention losses (KL per head
// as MiniLM, or MSE as TinyBERT), each over real tokens only, summed over the pairs of the maps.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "distill/kd/layer_map.h"
#include "distill/model/network.h"
#include "distill/util/options.h"

namespace distill {

enum class HiddenLoss { kMse, kCosine };
// KL per head (MiniLM), MSE (TinyBERT), or KL of query-query, key-key and value-value relations
// (MiniLMv2), which works whatever the two head counts are.
enum class AttentionLoss { kKl, kMse, kRelation };
enum class HeadMismatch { kRefuse, kAverage };  // when head counts differ: refuse, or compare head means

// The spellings in configs: mse, cosine; kl, mse, relation; refuse, average.
const char* name(HiddenLoss l);
const char* name(AttentionLoss l);
const char* name(HeadMismatch h);

struct LayerLossOptions {
  std::string hidden_map;     // layer map spec (layer_map.h); empty = no hidden loss
  std::string attention_map;  // layer map spec; empty = no attention loss
  HiddenLoss hidden_loss = HiddenLoss::kMse;
  AttentionLoss attention_loss = AttentionLoss::kKl;
  double hidden_weight = 1.0;     // weight of the summed hidden term
  double attention_weight = 1.0;  // weight of the summed attention term
  HeadMismatch head_mismatch = HeadMismatch::kRefuse;
  long relation_heads = 0;  // relation heads of attention_loss: relation; 0 = the teacher's head count

  // The distill.* keys of the intermediate layers.
  static const OptionTable<LayerLossOptions>& options();
  void validate() const;  // throws ConfigError naming distill.* fields
};

// [batch, seq, hs] vs [batch, seq, ht] (same width), mask [batch, seq] of 1 for real tokens:
// mean squared difference over real tokens and features.
at::Tensor hidden_mse(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask);
// Mean over real tokens of 1 - cos(s, t).
at::Tensor hidden_cosine(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask);
// [batch, heads, seq, seq] probabilities: mean over heads and real query rows of KL(t || s) per row.
at::Tensor attention_kl(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask);
// Mean squared difference over heads, real query rows and real keys.
at::Tensor attention_mse(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask);
// MiniLMv2 self-attention relation of one kind (query, key or value): s [batch, seq, hs] and
// t [batch, seq, ht] are each split into `heads` relation heads of width d = h / heads, whose
// relation is softmax(x x^T / sqrt(d)) over real keys; returns the mean over relation heads and
// real query rows of KL(t || s) per row, computed in float32 (float64 inputs in float64). hs and ht
// must be multiples of heads.
at::Tensor relation_kl(const at::Tensor& s, const at::Tensor& t, const at::Tensor& mask, long heads);

struct LayerLossTerms {
  at::Tensor hidden;     // summed over hidden pairs (undefined without a hidden map)
  at::Tensor attention;  // summed over attention pairs (undefined without an attention map)
};

// The layer losses for one student/teacher pair of architectures. Its projections (one
// Linear(student hidden, teacher hidden) per hidden pair when widths differ, named "hidden.<s>")
// are trained, checkpointed and reduced with the student.
class LayerLossImpl : public torch::nn::Module {
 public:
  // Validates the maps and head counts; errors name the map, the pair and the sizes.
  LayerLossImpl(const LayerLossOptions& o, const ModelConfig& student, const ModelConfig& teacher);
  bool wants_hidden() const { return !hidden_map_.empty(); }
  bool wants_attentions() const { return !attention_map_.empty(); }
  const LayerMap& hidden_map() const { return hidden_map_; }
  const LayerMap& attention_map() const { return attention_map_; }
  // `s` and `t` hold all hidden states / attentions (ModelOutput convention).
  LayerLossTerms forward(const ModelOutput& s, const ModelOutput& t, const at::Tensor& mask);

 private:
  // Query, key and value relation losses of student layer si against teacher layer ti, summed.
  at::Tensor relation_pair(const ModelOutput& s, const ModelOutput& t, const at::Tensor& mask, long si, long ti) const;

  LayerLossOptions o_;
  LayerMap hidden_map_, attention_map_;
  long relation_heads_ = 0;
  torch::nn::ModuleDict proj_{nullptr};
};
TORCH_MODULE(LayerLoss);

}  // namespace distill
