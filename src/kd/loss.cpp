#include "distill/kd/loss.h"

#include <torch/torch.h>

#include "distill/util/error.h"

namespace distill {

const OptionTable<KdOptions>& KdOptions::options() {
  static const OptionTable<KdOptions> table = [] {
    OptionTable<KdOptions> t("distill");
    t.add("alpha", &KdOptions::alpha, "weight of the hard-label cross-entropy");
    t.add("beta", &KdOptions::beta, "weight of the soft term T^2 * KL(p_t || p_s)");
    t.add("temperature", &KdOptions::temperature, "T of p = softmax(z / T); the T^2 factor keeps the gradient scale")
        .check([](double v) { return v > 0; }, "{key} must be > 0, got {value}");
    return t;
  }();
  return table;
}

void KdOptions::validate() const {
  DISTILL_CHECK(alpha >= 0 && beta >= 0 && alpha + beta > 0, ConfigError, "distill.alpha = ", alpha,
                " and distill.beta = ", beta, " must be >= 0 and not both 0");
  options().check(*this);
}

at::Tensor soft_kl(const at::Tensor& student, const at::Tensor& teacher, double temperature) {
  auto log_ps = torch::log_softmax(student / temperature, -1);
  auto log_pt = torch::log_softmax(teacher / temperature, -1);
  return (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean();
}

LossTerms kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& labels, const KdOptions& o) {
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

at::Tensor topk_soft_kl(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                        const at::Tensor& lse, double temperature) {
  DISTILL_CHECK(values.dim() == 2 && values.sizes() == indices.sizes() && lse.dim() == 1 &&
                    lse.size(0) == values.size(0) && student.dim() == 2 && student.size(0) == values.size(0),
                DataError, "top-k targets of shape ", values.sizes(), " / ", indices.sizes(), " / ", lse.sizes(),
                " do not fit student logits ", student.sizes());
  auto log_q = torch::log_softmax(student / temperature, -1);  // [rows, V]
  auto log_q_k = log_q.gather(1, indices);                     // [rows, k]
  auto log_p_k = values.to(log_q.dtype()) / temperature - lse.to(log_q.dtype()).unsqueeze(1);
  auto p_k = log_p_k.exp();
  auto top = (p_k * (log_p_k - log_q_k)).sum(1);
  // The rest: teacher mass r, student mass q_rest = sum of q outside the top k. Masked entries
  // get a large finite negative value so that k = V stays finite (then r = 0 and the term is 0).
  auto r = (1.0 - p_k.sum(1)).clamp_min(0.0);
  auto log_q_rest = log_q.scatter(1, indices, -1e30).logsumexp(1);
  auto rest = torch::where(r > 1e-12, r * (r.clamp_min(1e-30).log() - log_q_rest), torch::zeros_like(r));
  return (top + rest).mean();
}

LossTerms topk_kd_loss(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                       const at::Tensor& lse, const at::Tensor& labels, const KdOptions& o) {
  LossTerms t;
  t.hard_ce = torch::nn::functional::cross_entropy(student, labels);
  t.soft_kl = o.temperature * o.temperature * topk_soft_kl(student, values, indices, lse, o.temperature);
  t.total = o.alpha * t.hard_ce + o.beta * t.soft_kl;
  return t;
}

}  // namespace distill
