// Held-out evaluation: accuracy, macro-F1 and MCC against labels (where rows have them) and, with a teacher, top-1
// agreement, transfer risk (1 - agreement) and mean KL(teacher || student) at T = 1. A regressor (Note
// [regression] in data/dataset.h) gets MSE, Pearson and Spearman against the targets and, with a teacher, the
// teacher's own and the student's MSE and Pearson against the teacher's outputs.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/model/teacher_model.h"
#include "distill/train/metrics.h"

namespace distill {

struct EvalResult {
  std::int64_t examples = 0;
  std::int64_t labeled = 0;        // examples with a label (Note [unlabeled rows])
  double accuracy = 0;             // student vs labels, over the labeled examples
  bool has_class_metrics = false;  // a classifier (not a masked LM): macro-F1 and MCC (train/metrics.h)
  double macro_f1 = 0, mcc = 0;    // over the labeled examples
  bool has_teacher = false;
  double teacher_accuracy = 0;
  double agreement = 0;      // P[argmax student == argmax teacher]
  double transfer_risk = 0;  // 1 - agreement
  double kl = 0;             // mean KL(p_teacher || p_student), T = 1
  // Regression: the fields above but `examples`, `labeled` and `has_teacher` stay 0.
  bool regression = false;
  RegressionMetrics student_fit, teacher_fit;  // against the targets, over the labeled rows
  RegressionMetrics fidelity;                  // student against teacher, over every row (spearman included)
};

// Collective over `comm`: rank r evaluates rows r, r + W, ...; all ranks return the same result.
// `teacher` may be null. Models are put in eval mode and left there. The student runs on the device
// of its parameters, under autocast to `precision` there (Note [devices]).
EvalResult evaluate(Communicator& comm, NetworkImpl& student, TeacherModel* teacher, const DataSplit& split,
                    std::int64_t batch, c10::ScalarType precision = c10::ScalarType::Float);

nlohmann::json to_json(const EvalResult& r);

}  // namespace distill
