#include "distill/train/eval.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "distill/data/dataset.h"
#include "distill/kd/loss.h"
#include "distill/data/batch.h"
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

}  // namespace

EvalResult evaluate(Communicator& comm, NetworkImpl& student, TeacherModel* teacher, const DataSplit& split,
                    std::int64_t batch, c10::ScalarType precision) {
  torch::NoGradGuard g;
  student.eval();
  const auto device = student.parameters().front().device();
  // sums: examples, student correct, teacher correct, agreements, kl sum, labeled
  double sums[6] = {0, 0, 0, 0, 0, 0};
  // The student's confusion matrix over labeled rows (classifiers; label-major).
  const auto& sc = student.config();
  const std::int64_t classes = sc.kind != ModelKind::kBertMlm && sc.num_labels >= 2 ? sc.num_labels : 0;
  auto confusion = torch::zeros({classes * classes}, torch::kFloat64);
  // Each rank evaluates a contiguous range of rows, so it reads only its own blocks from disk.
  const std::int64_t begin = split.n * comm.rank() / comm.size(), end = split.n * (comm.rank() + 1) / comm.size();
  for (std::int64_t b = begin; b < end; b += batch) {
    std::vector<std::int64_t> part;
    for (auto i = b; i < std::min(end, b + batch); ++i) part.push_back(i);
    auto bt = make_batch(split, part, nullptr);
    to_device(bt, device);
    torch::Tensor zs;
    {
      Autocast cast(device, precision);
      zs = student.forward(bt.inputs).logits.to(torch::kFloat32);
    }
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
  }
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
