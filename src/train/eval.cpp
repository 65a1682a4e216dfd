#include "distill/train/eval.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "distill/data/dataset.h"
#include "distill/kd/loss.h"
#include "distill/data/batch.h"
#include "distill/data/split_file.h"
#include "distill/train/metrics.h"
#include "distill/train/nonfinite.h"
#include "distill/model/device.h"
#include "distill/util/error.h"

namespace distill {

static_assert(kUnlabeled == kIgnoreLabel, "kd and data must mark unlabeled rows alike");

namespace {

// Refuses non-finite outputs: argmax over NaN would count as agreement and accuracy.
void check_finite(const torch::Tensor& z, const char* who, const DataSplit& split,
                  const std::vector<std::int64_t>& rows) {
  auto bad = (~torch::isfinite(z)).flatten(1).any(1).to(torch::kCPU);
  if (!bad.any().item<bool>()) return;
  std::vector<std::int64_t> bad_rows;
  const auto* b = bad.data_ptr<bool>();
  for (std::int64_t i = 0; i < bad.size(0); ++i)
    if (b[i] && i < static_cast<std::int64_t>(rows.size())) bad_rows.push_back(rows[i]);
  const auto count = bad.sum().item<std::int64_t>();
  const std::string ids = example_ids(split, bad_rows);
  throw DataError(str("the ", who, "'s outputs are not finite (NaN or Inf) for ", count, " of ", bad.size(0),
                      " rows of this batch (example ids ", ids,
                      "): its weights are broken; evaluate another "
                      "checkpoint"));
}

// Rank r's contiguous share of the split's rows (so it reads only its own blocks from disk), in
// batches of `batch` made without a store and put on `device`; fn(rows, batch) for each.
void for_each_batch(Communicator& comm, const DataSplit& split, std::int64_t batch, const c10::Device& device,
                    const std::function<void(const std::vector<std::int64_t>&, Batch&)>& fn) {
  const std::int64_t begin = split.n * comm.rank() / comm.size(), end = split.n * (comm.rank() + 1) / comm.size();
  for (std::int64_t b = begin; b < end; b += batch) {
    std::vector<std::int64_t> part;
    for (auto i = b; i < std::min(end, b + batch); ++i) part.push_back(i);
    auto bt = make_batch(split, part, nullptr);
    to_device(bt, device);
    fn(part, bt);
  }
}

// The student's logits for `bt`, under autocast to `precision` on `device`, as `type`.
torch::Tensor student_logits(NetworkImpl& student, const Batch& bt, const c10::Device& device,
                             c10::ScalarType precision, c10::ScalarType type) {
  Autocast cast(device, precision);
  return student.forward(bt.inputs).logits.to(type);
}

// Every row's value in row order on every rank: each rank fills its own range, the rest are 0, and
// a sum joins them (eval sets are small).
std::vector<double> joined(Communicator& comm, std::vector<double> v) {
  comm.allreduce(v.data(), v.size(), DType::kFloat64, ReduceOp::kSum);
  return v;
}

// The metrics of `pred` against `target` over the rows where `keep` is set; zeros without such rows.
RegressionMetrics fit_over(const std::vector<double>& pred, const std::vector<double>& target,
                           const std::vector<double>& keep) {
  std::vector<double> p, t;
  for (std::size_t i = 0; i < pred.size(); ++i)
    if (keep[i] != 0) {
      p.push_back(pred[i]);
      t.push_back(target[i]);
    }
  return p.empty() ? RegressionMetrics{} : regression_metrics(p, t);
}

// A regressor (one output, float targets): the outputs of every row gathered, then MSE, Pearson and
// Spearman (which needs the ranks of all rows) on every rank alike.
EvalResult evaluate_regression(Communicator& comm, NetworkImpl& student, TeacherModel* teacher, const DataSplit& split,
                               std::int64_t batch, c10::ScalarType precision, const c10::Device& device) {
  const auto n = static_cast<std::size_t>(split.n);
  std::vector<double> zs(n, 0.0), zt(n, 0.0), y(n, 0.0), known(n, 0.0);
  for_each_batch(comm, split, batch, device, [&](const std::vector<std::int64_t>& part, Batch& bt) {
    auto s = student_logits(student, bt, device, precision, torch::kFloat64);
    check_finite(s, "student", split, part);
    DISTILL_CHECK(s.dim() == 2 && s.size(1) == 1, DataError, "a regression data set needs one output, the student has ",
                  s.sizes());
    s = s.select(1, 0).to(torch::kCPU).contiguous();
    const auto target = bt.labels.to(torch::kCPU).to(torch::kFloat64).contiguous();
    torch::Tensor t;
    if (teacher) {
      t = teacher->forward(bt.inputs).logits.to(torch::kCPU).to(torch::kFloat64);
      check_finite(t, "teacher", split, part);
      DISTILL_CHECK(t.dim() == 2 && t.size(1) == 1, DataError, "a regression data set needs one output, the teacher has ",
                    t.sizes());
      t = t.select(1, 0).contiguous();
    }
    for (std::size_t k = 0; k < part.size(); ++k) {
      const auto i = static_cast<std::size_t>(part[k]);
      zs[i] = s.data_ptr<double>()[k];
      const double v = target.data_ptr<double>()[k];
      known[i] = std::isfinite(v) ? 1.0 : 0.0;
      y[i] = std::isfinite(v) ? v : 0.0;
      if (teacher) zt[i] = t.data_ptr<double>()[k];
    }
  });
  zs = joined(comm, std::move(zs));
  y = joined(comm, std::move(y));
  known = joined(comm, std::move(known));
  EvalResult r;
  r.regression = true;
  r.examples = split.n;
  for (double k : known) r.labeled += k != 0;
  r.student_fit = fit_over(zs, y, known);
  r.has_teacher = teacher != nullptr;
  if (teacher) {
    zt = joined(comm, std::move(zt));
    r.teacher_fit = fit_over(zt, y, known);
    r.fidelity = fit_over(zs, zt, std::vector<double>(n, 1.0));
  }
  return r;
}

}  // namespace

EvalResult evaluate(Communicator& comm, NetworkImpl& student, TeacherModel* teacher, const DataSplit& split,
                    std::int64_t batch, c10::ScalarType precision) {
  torch::NoGradGuard g;
  student.eval();
  const auto device = student.parameters().front().device();
  if (!split.scores.empty() || (split.file && split.file->regression()))
    return evaluate_regression(comm, student, teacher, split, batch, precision, device);
  // sums: examples, student correct, teacher correct, agreements, kl sum, labeled
  double sums[6] = {0, 0, 0, 0, 0, 0};
  // The student's confusion matrix over labeled rows (classifiers; label-major).
  const auto& sc = student.config();
  const std::int64_t classes = sc.kind != ModelKind::kBertMlm && sc.num_labels >= 2 ? sc.num_labels : 0;
  auto confusion = torch::zeros({classes * classes}, torch::kFloat64);
  for_each_batch(comm, split, batch, device, [&](const std::vector<std::int64_t>& part, Batch& bt) {
    const auto zs = student_logits(student, bt, device, precision, torch::kFloat32);
    if (zs.dim() == 2 && zs.size(0) == static_cast<std::int64_t>(part.size()))
      check_finite(zs, "student", split, part);
    else
      check_finite(zs.reshape({1, -1}), "student", split, part);
    auto ps = zs.argmax(-1);
    sums[0] += static_cast<double>(zs.size(0));        // examples, or masked tokens for a masked LM
    sums[1] += ps.eq(bt.labels).sum().item<double>();  // unlabeled rows (kIgnoreLabel) never match
    sums[5] += bt.labels.ne(kIgnoreLabel).sum().item<double>();
    if (classes > 0 && zs.dim() == 2 && zs.size(1) == classes) {
      const auto labeled = bt.labels.ne(kIgnoreLabel);
      const auto cell = (bt.labels.masked_select(labeled) * classes + ps.masked_select(labeled)).to(torch::kCPU);
      confusion += torch::bincount(cell, {}, classes * classes).to(torch::kFloat64);
    }
    if (teacher) {
      auto zt = teacher->forward(bt.inputs).logits.to(device);
      if (zt.dim() == 2 && zt.size(0) == static_cast<std::int64_t>(part.size()))
        check_finite(zt, "teacher", split, part);
      else
        check_finite(zt.reshape({1, -1}), "teacher", split, part);
      DISTILL_CHECK(zt.sizes() == zs.sizes(), DataError, "the teacher's logits have shape ", zt.sizes(),
                    ", the student's ", zs.sizes());
      auto pt = zt.argmax(-1);
      sums[2] += pt.eq(bt.labels).sum().item<double>();
      sums[3] += ps.eq(pt).sum().item<double>();
      sums[4] += soft_kl(zs, zt, 1.0).item<double>() * static_cast<double>(zs.size(0));
    }
  });
  comm.allreduce(sums, 6, DType::kFloat64, ReduceOp::kSum);
  confusion = confusion.contiguous();
  if (classes > 0) comm.allreduce(confusion.data_ptr<double>(), confusion.numel(), DType::kFloat64, ReduceOp::kSum);
  EvalResult r;
  r.examples = static_cast<std::int64_t>(sums[0]);
  r.labeled = static_cast<std::int64_t>(sums[5]);
  const double n = std::max(1.0, sums[0]), labeled = std::max(1.0, sums[5]);
  r.accuracy = sums[1] / labeled;
  if (classes > 0) {
    r.has_class_metrics = true;
    const auto* c = confusion.data_ptr<double>();
    const auto m = class_metrics(std::vector<double>(c, c + confusion.numel()), classes);
    r.macro_f1 = m.macro_f1;
    r.mcc = m.mcc;
  }
  r.has_teacher = teacher != nullptr;
  if (teacher) {
    r.teacher_accuracy = sums[2] / labeled;
    r.agreement = sums[3] / n;
    r.transfer_risk = 1.0 - r.agreement;
    r.kl = sums[4] / n;
  }
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  // Accuracy only where labels exist (Note [unlabeled rows]): null when no row has one.
  const nlohmann::json none;
  if (r.regression) {
    const auto fit = [&](const RegressionMetrics& m) {
      return r.labeled > 0 ? nlohmann::json{{"mse", m.mse}, {"pearson", m.pearson}, {"spearman", m.spearman}} : none;
    };
    nlohmann::json j = {{"examples", r.examples}, {"labeled", r.labeled}, {"task", "regression"}};
    const auto s = fit(r.student_fit);
    for (const char* k : {"mse", "pearson", "spearman"}) j[k] = s.is_null() ? none : s[k];
    if (r.has_teacher) {
      const auto t = fit(r.teacher_fit);
      for (const char* k : {"mse", "pearson", "spearman"}) j[std::string("teacher_") + k] = t.is_null() ? none : t[k];
      j["mse_teacher_student"] = r.fidelity.mse;
      j["pearson_teacher_student"] = r.fidelity.pearson;
    }
    return j;
  }
  nlohmann::json j = {{"examples", r.examples},
                      {"labeled", r.labeled},
                      {"accuracy", r.labeled > 0 ? nlohmann::json(r.accuracy) : none}};
  if (r.has_class_metrics) {
    j["macro_f1"] = r.labeled > 0 ? nlohmann::json(r.macro_f1) : none;
    j["mcc"] = r.labeled > 0 ? nlohmann::json(r.mcc) : none;
  }
  if (r.has_teacher) {
    j["teacher_accuracy"] = r.labeled > 0 ? nlohmann::json(r.teacher_accuracy) : none;
    j["agreement"] = r.agreement;
    j["transfer_risk"] = r.transfer_risk;
    j["kl_teacher_student"] = r.kl;
  }
  return j;
}

}  // namespace distill
