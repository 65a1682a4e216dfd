// The objective of one training step, by named terms: the hard-label cross-entropy and the
// soft-target loss against a dense or a top-k teacher (kd/loss.h), plus the weighted hidden-state
// and attention terms of the layer maps (kd/intermediate.h).
#pragma once
#include <ATen/core/Tensor.h>

#include "distill/kd/intermediate.h"
#include "distill/kd/loss.h"
#include "distill/model/network.h"

namespace distill {

// What the teacher gives a step; any part may be undefined (empty), as the store or teacher provides.
struct TeacherTargets {
  at::Tensor logits;  // [batch, classes] dense logits
  // Top-k teacher (masked LM), per predicted token: logits [tokens, k], their vocabulary ids
  // [tokens, k] int64, and logsumexp(z / T) of the full row [tokens]. Preferred over `logits`.
  at::Tensor topk_values, topk_indices, topk_lse;
  ModelOutput layers;  // hidden states and attentions by teacher layer index (ModelOutput convention)
};

struct ObjectiveTerms {
  at::Tensor total;      // scalar that backward() is called on: the terms below, weighted
  at::Tensor hard_ce;    // mean cross-entropy against the labels
  at::Tensor soft_kl;    // T^2 * mean soft-target KL; undefined without teacher logits
  at::Tensor hidden;     // summed hidden-state term, unweighted; undefined without a hidden map
  at::Tensor attention;  // summed attention term, unweighted; undefined without an attention map
};

class Objective {
 public:
  // `layer_loss` null: no layer terms. It is shared with the caller (its projections train with
  // the student); `layers` gives the weights of its terms.
  Objective(const KdOptions& kd, const LayerLossOptions& layers, LayerLoss layer_loss);
  // `student` with float32 logits (and the hidden states / attentions the layer maps use); labels:
  // [batch] (masked LM: [predicted tokens]); mask: [batch, seq], 1 for real tokens (layer terms).
  ObjectiveTerms operator()(const ModelOutput& student, const TeacherTargets& teacher, const at::Tensor& labels,
                            const at::Tensor& mask);
  // alpha, beta and T for the next steps (distill schedules, KdOptions::at).
  void set_kd(const KdOptions& kd) { kd_ = kd; }
  const KdOptions& kd() const { return kd_; }

 private:
  KdOptions kd_;
  double hidden_weight_, attention_weight_;
  LayerLoss layer_loss_;
};

}  // namespace distill
