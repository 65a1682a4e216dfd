#include "distill/kd/loss.h"

#include <torch/torch.h>

#include <cmath>

#include "distill/util/error.h"
#include "distill/util/text.h"

namespace distill {

namespace {
constexpr double kTopkRestFloor = 1e-6;  // the teacher's rest mass in the top-k bins, at least
}  // namespace

const char* name(SoftLoss k) {
  switch (k) {
    case SoftLoss::kReverseKl:
      return "reverse_kl";
    case SoftLoss::kJsd:
      return "jsd";
    case SoftLoss::kMse:
      return "mse";
    case SoftLoss::kKl:
      break;
  }
  return "kl";
}

const char* name(KdSchedule s) {
  switch (s) {
    case KdSchedule::kLinear:
      return "linear";
    case KdSchedule::kCosine:
      return "cosine";
    case KdSchedule::kConstant:
      break;
  }
  return "constant";
}

namespace {
// The value of a schedule from `start` to `end` (-1: start) at t in [0, 1].
double scheduled_value(KdSchedule s, double start, double end, double t) {
  if (s == KdSchedule::kConstant || end < 0) return start;
  const double f = s == KdSchedule::kLinear ? t : 0.5 * (1.0 - std::cos(M_PI * t));
  return start + (end - start) * f;
}
}  // namespace

bool KdOptions::scheduled() const {
  return (weight_schedule != KdSchedule::kConstant &&
          ((alpha_end >= 0 && alpha_end != alpha) || (beta_end >= 0 && beta_end != beta))) ||
         temperature_scheduled();
}

bool KdOptions::temperature_scheduled() const {
  return temperature_schedule != KdSchedule::kConstant && temperature_end > 0 && temperature_end != temperature;
}

KdOptions KdOptions::at(std::int64_t step, std::int64_t steps) const {
  KdOptions o = *this;
  const double t = steps > 1 ? std::min(1.0, static_cast<double>(step) / static_cast<double>(steps - 1)) : 1.0;
  o.alpha = scheduled_value(weight_schedule, alpha, alpha_end, t);
  o.beta = scheduled_value(weight_schedule, beta, beta_end, t);
  o.temperature = scheduled_value(temperature_schedule, temperature, temperature_end, t);
  return o;
}

namespace {
// sum over the last dim of p * (log p - log q), with 0 where p = 0 (p = exp(log_p)); the masked
// difference keeps -inf out of the product, so gradients stay finite.
at::Tensor kl_rows(const at::Tensor& log_p, const at::Tensor& log_q) {
  const auto p = log_p.exp();
  return (p * torch::where(p > 0, log_p - log_q, torch::zeros_like(p))).sum(-1);
}

// The divergence of kind `k` between distributions given as log-probabilities [rows, bins]
// (teacher log_p, student log_q), a mean over rows; kl, reverse_kl or jsd.
at::Tensor divergence(SoftLoss k, const at::Tensor& log_p, const at::Tensor& log_q) {
  if (k == SoftLoss::kReverseKl) return kl_rows(log_q, log_p).mean();
  if (k == SoftLoss::kJsd) {
    const auto log_m = torch::logaddexp(log_p, log_q) - std::log(2.0);  // finite where both underflow
    return (0.5 * (kl_rows(log_p, log_m) + kl_rows(log_q, log_m))).mean();
  }
  return kl_rows(log_p, log_q).mean();
}
}  // namespace

const OptionTable<KdOptions>& KdOptions::options() {
  static const OptionTable<KdOptions> table = [] {
    OptionTable<KdOptions> t("distill");
    t.add("alpha", &KdOptions::alpha, "weight of the hard-label cross-entropy");
    t.add("beta", &KdOptions::beta, "weight of the soft term (distill.soft_loss; by default T^2 * KL(p_t || p_s))");
    t.add("temperature", &KdOptions::temperature, "T of p = softmax(z / T); the T^2 factor keeps the gradient scale")
        .check([](double v) { return v > 0; }, "{key} must be > 0, got {value}");
    t.add("soft_loss", &KdOptions::soft_loss, {SoftLoss::kKl, SoftLoss::kReverseKl, SoftLoss::kJsd, SoftLoss::kMse},
          "the soft term: kl = T^2 KL(p_t || p_s), reverse_kl = T^2 KL(p_s || p_t), jsd = T^2 Jensen-Shannon, "
          "mse = mean squared logit difference (T unused)");
    t.add(
        "weight_schedule", &KdOptions::weight_schedule,
        {KdSchedule::kConstant, KdSchedule::kLinear, KdSchedule::kCosine},
        "alpha and beta over the steps: constant, or linear / cosine from distill.alpha, beta to alpha_end, beta_end");
    t.add("alpha_end", &KdOptions::alpha_end, "alpha at the last step (weight_schedule); -1 = distill.alpha")
        .check([](double v) { return v >= 0 || v == -1; }, "{key} must be >= 0 (or -1: no change), got {value}");
    t.add("beta_end", &KdOptions::beta_end, "beta at the last step (weight_schedule); -1 = distill.beta")
        .check([](double v) { return v >= 0 || v == -1; }, "{key} must be >= 0 (or -1: no change), got {value}");
    t.add("temperature_schedule", &KdOptions::temperature_schedule,
          {KdSchedule::kConstant, KdSchedule::kLinear, KdSchedule::kCosine},
          "T over the steps: constant, or linear / cosine from distill.temperature to temperature_end");
    t.add("temperature_end", &KdOptions::temperature_end,
          "T at the last step (temperature_schedule); -1 = distill.temperature")
        .check([](double v) { return v > 0 || v == -1; }, "{key} must be > 0 (or -1: no change), got {value}");
    t.add("teacher_weights", &KdOptions::teacher_weights,
          "weights of teacher.path and each of teacher.extra_paths, comma-separated, > 0 (normalised); empty = equal");
    return t;
  }();
  return table;
}

void KdOptions::validate() const {
  DISTILL_CHECK(alpha >= 0 && beta >= 0 && alpha + beta > 0, ConfigError, "distill.alpha = ", alpha,
                " and distill.beta = ", beta, " must be >= 0 and not both 0");
  options().check(*this);
  if (!teacher_weights.empty()) teacher_weight_values(split_list(teacher_weights).size());
  const auto last = at(1, 1);
  DISTILL_CHECK(last.alpha + last.beta > 0, ConfigError, "distill.alpha_end = ", alpha_end,
                " and distill.beta_end = ", beta_end, " weigh nothing at the last step");
}

std::vector<double> KdOptions::teacher_weight_values(std::size_t teachers) const {
  if (teacher_weights.empty()) return std::vector<double>(teachers, 1.0 / static_cast<double>(teachers));
  std::vector<double> w;
  double sum = 0;
  for (const auto& part : split_list(teacher_weights)) {
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    DISTILL_CHECK(*end == '\0' && std::isfinite(v) && v > 0, ConfigError,
                  "distill.teacher_weights = '", teacher_weights, "': '", part, "' is not a number > 0");
    w.push_back(v);
    sum += v;
  }
  DISTILL_CHECK(w.size() == teachers, ConfigError, "distill.teacher_weights = '", teacher_weights, "' gives ",
                w.size(), " weights for ", teachers, " teachers (teacher.path and ", teachers - 1,
                " of teacher.extra_paths)");
  for (double& v : w) v /= sum;
  return w;
}

at::Tensor ensemble_logits(const at::Tensor& teachers, const std::vector<double>& weights, double temperature,
                           SoftLoss kind) {
  DISTILL_CHECK(teachers.dim() == 3 && teachers.size(0) == static_cast<std::int64_t>(weights.size()), DataError,
                "the teachers' logits have shape ", teachers.sizes(), " for ", weights.size(), " teacher weights");
  auto w = torch::tensor(weights, teachers.options()).view({-1, 1, 1});  // [N, 1, 1]
  if (kind == SoftLoss::kMse) return (w * teachers).sum(0);
  // T log sum_i w_i softmax(z_i / T), with log w_i added inside one logsumexp.
  return temperature * torch::logsumexp(w.log() + torch::log_softmax(teachers / temperature, -1), 0);
}

at::Tensor soft_kl(const at::Tensor& student, const at::Tensor& teacher, double temperature) {
  auto log_ps = torch::log_softmax(student / temperature, -1);
  auto log_pt = torch::log_softmax(teacher / temperature, -1);
  return (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean();
}

at::Tensor hard_ce(const at::Tensor& student, const at::Tensor& labels) {
  namespace F = torch::nn::functional;
  const auto rows = student.size(0);
  if (rows == 0) return (student * 0).sum();
  if (labels.is_floating_point()) {  // regression: squared error on the labeled (finite) rows
    DISTILL_CHECK(student.dim() == 2 && student.size(1) == 1 && labels.dim() == 1 && labels.size(0) == rows, DataError,
                  "regression targets of shape ", labels.sizes(), " for outputs of shape ", student.sizes(),
                  " (expected [batch] and [batch, 1])");
    const auto y = labels.to(student.dtype());
    const auto known = torch::isfinite(y);
    const auto err = student.select(1, 0) - torch::where(known, y, torch::zeros_like(y));
    return torch::where(known, err * err, torch::zeros_like(err)).sum() / static_cast<double>(rows);
  }
  // Summed over the labeled rows, divided by all rows: an unlabeled row adds 0, so every labeled row
  // weighs 1 / batch whatever the batch's mix (and the mean over the ranks stays the mean over all rows).
  const auto options = F::CrossEntropyFuncOptions().ignore_index(kUnlabeled).reduction(torch::kSum);
  return F::cross_entropy(student, labels, options) / static_cast<double>(rows);
}

LossTerms kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& labels, const KdOptions& o) {
  LossTerms t;
  t.hard_ce = hard_ce(student, labels);
  if (!teacher.defined()) {
    t.total = t.hard_ce;
    return t;
  }
  DISTILL_CHECK(!labels.is_floating_point() || o.soft_loss == SoftLoss::kMse, ConfigError,
                "regression data (one output) needs distill.soft_loss: mse; the softmax of one output is constant, so ",
                name(o.soft_loss), " would be 0");
  const auto mixed = teacher.dim() == 3 ? ensemble_logits(teacher, o.teacher_weight_values(teacher.size(0)),
                                                          o.temperature, o.soft_loss)
                                        : teacher;
  DISTILL_CHECK(mixed.sizes() == student.sizes(), DataError, "teacher logits have shape ", mixed.sizes(),
                ", the student's have ", student.sizes());
  t.soft_kl = soft_loss(o.soft_loss, student, mixed.to(student.dtype()), o.temperature);
  t.total = o.alpha * t.hard_ce + o.beta * t.soft_kl;
  return t;
}

at::Tensor soft_loss(SoftLoss k, const at::Tensor& student, const at::Tensor& teacher, double temperature) {
  const double t2 = temperature * temperature;
  switch (k) {
    case SoftLoss::kKl:
      return t2 * soft_kl(student, teacher, temperature);
    case SoftLoss::kMse:
      return torch::mse_loss(student, teacher);
    default:
      return t2 * divergence(k, torch::log_softmax(teacher / temperature, -1),
                             torch::log_softmax(student / temperature, -1));
  }
}

namespace {
void check_topk_shapes(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                       const at::Tensor& lse) {
  DISTILL_CHECK(values.dim() == 2 && values.sizes() == indices.sizes() && lse.dim() == 1 &&
                    lse.size(0) == values.size(0) && student.dim() == 2 && student.size(0) == values.size(0),
                DataError, "top-k targets of shape ", values.sizes(), " / ", indices.sizes(), " / ", lse.sizes(),
                " do not fit student logits ", student.sizes());
}
}  // namespace

at::Tensor topk_soft_kl(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                        const at::Tensor& lse, double temperature) {
  check_topk_shapes(student, values, indices, lse);
  auto log_q = torch::log_softmax(student / temperature, -1);  // [rows, V]
  auto log_q_k = log_q.gather(1, indices);                     // [rows, k]
  auto log_p_k = values.to(log_q.dtype()) / temperature - lse.to(log_q.dtype()).unsqueeze(1);
  auto p_k = log_p_k.exp();
  auto top = (p_k * (log_p_k - log_q_k)).sum(1);
  // The rest: teacher mass r, student mass q_rest = sum of q outside the top k. Masked entries
  // get a large finite negative value so that k = V stays finite (then r = 0 and the term is 0).
  // k = V: no rest bin (float16 values would leave a spurious remainder against an empty student bin).
  if (indices.size(1) == student.size(1)) return top.mean();
  auto r = (1.0 - p_k.sum(1)).clamp_min(0.0);
  auto log_q_rest = log_q.scatter(1, indices, -1e30).logsumexp(1);
  auto rest = torch::where(r > 1e-12, r * (r.clamp_min(1e-30).log() - log_q_rest), torch::zeros_like(r));
  return (top + rest).mean();
}

at::Tensor topk_soft_loss(SoftLoss k, const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                          const at::Tensor& lse, double temperature) {
  const double t2 = temperature * temperature;
  DISTILL_CHECK(k != SoftLoss::kMse, ConfigError,
                "distill.soft_loss: mse needs every teacher logit; a top-k store keeps k of them (use kl, reverse_kl "
                "or jsd)");
  if (k == SoftLoss::kKl) return t2 * topk_soft_kl(student, values, indices, lse, temperature);
  check_topk_shapes(student, values, indices, lse);
  // The k + 1 bins of topk_soft_kl: the k tokens and the rest. The teacher's rest mass comes from
  // float16 values, good to about 1e-6: it is floored there (none at all when k = V).
  auto log_q = torch::log_softmax(student / temperature, -1);
  auto log_p_k = values.to(log_q.dtype()) / temperature - lse.to(log_q.dtype()).unsqueeze(1);
  auto r = (1.0 - log_p_k.exp().sum(1, true)).clamp_min(kTopkRestFloor);
  if (indices.size(1) == student.size(1)) r = torch::zeros_like(r);
  auto log_p = torch::cat({log_p_k, r.log()}, 1);
  auto log_q_rest = log_q.scatter(1, indices, -1e30).logsumexp(1, true);
  auto log_qb = torch::cat({log_q.gather(1, indices), log_q_rest}, 1);
  return t2 * divergence(k, log_p, log_qb);
}

LossTerms topk_kd_loss(const at::Tensor& student, const at::Tensor& values, const at::Tensor& indices,
                       const at::Tensor& lse, const at::Tensor& labels, const KdOptions& o) {
  LossTerms t;
  t.hard_ce = hard_ce(student, labels);
  t.soft_kl = topk_soft_loss(o.soft_loss, student, values, indices, lse, o.temperature);
  t.total = o.alpha * t.hard_ce + o.beta * t.soft_kl;
  return t;
}

}  // namespace distill
