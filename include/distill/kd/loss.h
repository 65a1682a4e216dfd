// The distillation objective: alpha * CE(student, labels) + beta * T^2 * KL(p_t || p_s), with
// p = softmax(z / T). Without teacher logits it is plain cross-entropy (teacher training).
#pragma once
#include <ATen/core/Tensor.h>

#include "distill/util/options.h"

namespace distill {

struct KdOptions {
  double alpha = 0.5;        // weight of the hard-label cross-entropy
  double beta = 0.5;         // weight of the soft-target term
  double temperature = 2.0;  // T; the soft term is scaled by T^2 so its gradient scale is T-independent

  // The distill.alpha, beta and temperature keys.
  static const OptionTable<KdOptions>& options();
  void validate() const;  // throws ConfigError naming distill.* fields
};

struct LossTerms {
  at::Tensor total;    // scalar that backward() is called on
  at::Tensor hard_ce;  // mean CE against labels
  at::Tensor soft_kl;  // T^2 * mean KL(p_t || p_s); undefined without a teacher
};

// student, teacher: [batch, classes] logits; labels: [batch] int64. `teacher` may be undefined.
LossTerms kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& labels, const KdOptions& o);

// Mean over the batch of KL(softmax(t / T) || softmax(s / T)) (no T^2 factor).
at::Tensor soft_kl(const at::Tensor& student, const at::Tensor& teacher, double temperature);

// The same from sparse teacher rows: top-k logits `values` [rows, k] at vocabulary ids `indices`
// [rows, k] and lse = logsumexp(z / T) of the full teacher row [rows]. Both distributions are
// coarsened to k + 1 bins (the k tokens, and the rest with the teacher's remaining mass
// 1 - sum p_k); the result is the mean KL between them: at most the dense KL, equal when k = V.
at::Tensor topk_soft_kl(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                        const at::Tensor& lse, double temperature);

// kd_loss with a top-k teacher: alpha * CE + beta * T^2 * topk_soft_kl.
LossTerms topk_kd_loss(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                       const at::Tensor& lse, const at::Tensor& labels, const KdOptions& o);

}  // namespace distill
