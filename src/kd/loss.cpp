#include "distill/kd/loss.h"

#include <torch/torch.h>

#include "distill/util/error.h"

namespace distill {

void KdOptions::validate() const {
  DISTILL_CHECK(alpha >= 0 && beta >= 0 && alpha + beta > 0, ConfigError, "distill.alpha = ", alpha,
                " and distill.beta = ", beta, " must be >= 0 and not both 0");
  DISTILL_CHECK(temperature > 0, ConfigError, "distill.temperature must be > 0, got ", temperature);
}

at::Tensor soft_kl(const at::Tensor& student, const at::Tensor& teacher, double temperature) {
  auto log_ps = torch::log_softmax(student / temperature, -1);
  auto log_pt = torch::log_softmax(teacher / temperature, -1);
  return (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean();
}

LossTerms kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& labels,
                  const KdOptions& o) {
  LossTerms t;
  t.hard_ce = torch::nn::functional::cross_entropy(student, labels);
  if (!teacher.defined()) {
    t.total = t.hard_ce;
    return t;
  }
  DISTILL_CHECK(teacher.sizes() == student.sizes(), DataError, "teacher logits have shape ", teacher.sizes(),
                ", the student's have ", student.sizes());
  t.soft_kl = o.temperature * o.temperature * soft_kl(student, teacher.to(student.dtype()), o.temperature);
  t.total = o.alpha * t.hard_ce + o.beta * t.soft_kl;
  return t;
}

}  // namespace distill
