// The distillation objective: alpha * CE(student, labels) + beta * soft, with soft one of
// (distill.soft_loss; p = softmax(z / T)):
//   kl          T^2 * KL(p_t || p_s)  (Hinton's; the default)
//   reverse_kl  T^2 * KL(p_s || p_t)
//   jsd         T^2 * JS(p_t, p_s) = T^2 * (KL(p_t || m) + KL(p_s || m)) / 2, m = (p_t + p_s) / 2
//   mse         mean over rows and classes of (z_s - z_t)^2 (logits, T unused)
// each a mean over the batch. Without teacher logits it is plain cross-entropy (teacher training).
// Regression (Note [regression] in data/dataset.h): float labels make the hard term the squared error
// of the one output, and the soft term must be mse (the squared difference of the two outputs).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "distill/util/options.h"

namespace distill {

enum class SoftLoss { kKl, kReverseKl, kJsd, kMse };
const char* name(SoftLoss k);  // "kl", "reverse_kl", "jsd", "mse"

// How alpha, beta or T move from their start to their end value over the steps: constant (the start
// value throughout), linear, or cosine (start + (end - start) (1 - cos(pi t)) / 2), with t = step /
// (steps - 1) so the last step takes the end value. A function of the step: a resume repeats it.
enum class KdSchedule { kConstant, kLinear, kCosine };
const char* name(KdSchedule s);  // "constant", "linear", "cosine"

struct KdOptions {
  double alpha = 0.5;        // weight of the hard-label cross-entropy
  double beta = 0.5;         // weight of the soft-target term
  double temperature = 2.0;  // T; the soft term is scaled by T^2 so its gradient scale is T-independent
  SoftLoss soft_loss = SoftLoss::kKl;
  KdSchedule weight_schedule = KdSchedule::kConstant;          // alpha and beta
  KdSchedule temperature_schedule = KdSchedule::kConstant;     // T
  double alpha_end = -1, beta_end = -1, temperature_end = -1;  // the last step's values; -1 = the start value
  // Weights of teacher.path and each of teacher.extra_paths, comma-separated, each > 0; empty =
  // equal (Note [several teachers]).
  std::string teacher_weights;

  // The teacher weights for `teachers` teachers, normalised to sum 1. Throws ConfigError when
  // distill.teacher_weights gives another count.
  std::vector<double> teacher_weight_values(std::size_t teachers) const;

  // Whether alpha, beta or T change over the steps.
  bool scheduled() const;
  bool temperature_scheduled() const;
  // The options of 0-based step `step` of `steps`: alpha, beta and T at that step (KdSchedule).
  KdOptions at(std::int64_t step, std::int64_t steps) const;

  // The distill.alpha, beta, temperature and soft_loss keys.
  static const OptionTable<KdOptions>& options();
  void validate() const;  // throws ConfigError naming distill.* fields
};

struct LossTerms {
  at::Tensor total;    // scalar that backward() is called on
  at::Tensor hard_ce;  // mean CE against labels
  at::Tensor soft_kl;  // the soft term (T^2 * mean KL(p_t || p_s) by default); undefined without a teacher
};

// The label of a row without one: data/dataset.h's kIgnoreLabel (train/eval.cpp checks they agree).
constexpr std::int64_t kUnlabeled = -100;
// Cross-entropy summed over the rows whose label is not kUnlabeled, divided by all rows (Note
// [unlabeled rows]): the mean cross-entropy when every row is labeled, 0 when none is. With float
// labels (regression, student [batch, 1]): (student - label)^2 summed over the rows whose label is
// finite (NaN = unlabeled), divided by all rows.
at::Tensor hard_ce(const at::Tensor& student, const at::Tensor& labels);
// student, teacher: [batch, classes] logits, or [N, batch, classes] for N teachers (mixed by
// ensemble_logits); labels: [batch] int64, or float (regression; ConfigError unless soft_loss is
// mse when there is a teacher). `teacher` may be undefined.
LossTerms kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& labels, const KdOptions& o);

// Note [several teachers]: with N teachers the soft target is the weighted mean of their soft
// targets, p = sum_i w_i softmax(z_i / T), as logits T log p (whose softmax at T is p), so every
// divergence kind applies unchanged and follows a T schedule; for soft_loss mse (a logit loss) it
// is the weighted mean of the logits. Teachers' logits come stacked as [N, batch, classes].
at::Tensor ensemble_logits(const at::Tensor& teachers, const std::vector<double>& weights, double temperature,
                           SoftLoss kind);

// Mean over the batch of KL(softmax(t / T) || softmax(s / T)) (no T^2 factor).
at::Tensor soft_kl(const at::Tensor& student, const at::Tensor& teacher, double temperature);

// The same from sparse teacher rows: top-k logits `values` [rows, k] at vocabulary ids `indices`
// [rows, k] and lse = logsumexp(z / T) of the full teacher row [rows]. Both distributions are
// coarsened to k + 1 bins (the k tokens, and the rest with the teacher's remaining mass
// 1 - sum p_k); the result is the mean KL between them: at most the dense KL, equal when k = V.
at::Tensor topk_soft_kl(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                        const at::Tensor& lse, double temperature);

// The soft term of kind `k` between student and teacher logits [rows, classes], T^2 included.
at::Tensor soft_loss(SoftLoss k, const at::Tensor& student, const at::Tensor& teacher, double temperature);
// The same from top-k teacher rows, on the k + 1 bins of topk_soft_kl (kl, reverse_kl, jsd; mse needs
// every teacher logit and is refused with ConfigError).
at::Tensor topk_soft_loss(SoftLoss k, const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                          const at::Tensor& lse, double temperature);

// kd_loss with a top-k teacher: alpha * CE + beta * topk_soft_loss.
LossTerms topk_kd_loss(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                       const at::Tensor& lse, const at::Tensor& labels, const KdOptions& o);

}  // namespace distill
