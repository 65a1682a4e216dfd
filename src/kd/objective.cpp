#include "distill/kd/objective.h"

#include <torch/torch.h>

namespace distill {

Objective::Objective(const KdOptions& kd, const LayerLossOptions& layers, LayerLoss layer_loss)
    : kd_(kd),
      hidden_weight_(layers.hidden_weight),
      attention_weight_(layers.attention_weight),
      layer_loss_(std::move(layer_loss)) {}

ObjectiveTerms Objective::operator()(const ModelOutput& student, const TeacherTargets& teacher,
                                     const at::Tensor& labels, const at::Tensor& mask) {
  const LossTerms kd = teacher.topk_values.defined() ? topk_kd_loss(student.logits, teacher.topk_values,
                                                                    teacher.topk_indices, teacher.topk_lse, labels, kd_)
                                                     : kd_loss(student.logits, teacher.logits, labels, kd_);
  ObjectiveTerms t{kd.total, kd.hard_ce, kd.soft_kl, {}, {}};
  if (!layer_loss_) return t;
  const LayerLossTerms lt = layer_loss_->forward(student, teacher.layers, mask);
  t.hidden = lt.hidden;
  t.attention = lt.attention;
  if (lt.hidden.defined()) t.total = t.total + hidden_weight_ * lt.hidden;
  if (lt.attention.defined()) t.total = t.total + attention_weight_ * lt.attention;
  return t;
}

}  // namespace distill
